"""The warehouse on DuckLake: a PostgreSQL catalog and Parquet files in a directory or on S3.

A lake connection is an in-memory DuckDB with the lake ATTACHed under the same alias as a
warehouse file (`warehouse`, see `connection.py`) and made the default catalog, so
`siro.<table>` resolves exactly as it does on a file, and the pipeline's SQL runs as is.

Extensions come from the installed `duckdb-extension-*` wheels and are LOADed by path:
`INSTALL` would need extensions.duckdb.org, which production machines cannot reach. Those
wheels exist only for some DuckDB versions (1.5.5 today), so `lake_unavailable()` says
why a lake cannot be opened with the DuckDB that is installed.

On S3 without AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY the secret uses the AWS SDK's
standard credential chain (an IAM role through EKS IRSA or an instance profile, AWS_PROFILE,
~/.aws/credentials), which the `aws` extension provides; a keyed setup never loads it.

Several processes may write at once. DuckLake checks conflicts when a transaction commits:
an insert into a table another transaction deleted from since ours began fails (even on
other days), and so do two concurrent CREATEs of one table. Such a failure rolls back
cleanly, and `lake_retry.retry_lake_conflicts` runs the whole transaction again (only
such lost races: see `lake_retry.py`). Every write of ours is a merge that is correct to
re-run on the newer state.

The catalog's password and the S3 keys are registered with `siro_assets.redaction` when
`LakeSettings` are built, so the retry's log lines and the errors it raises are scrubbed
of them (postgres_scanner quotes the whole DSN when a connection fails).
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from .. import redaction
from .connection import DEFAULT_MEMORY_LIMIT, DEFAULT_SCHEMA, WAREHOUSE_CATALOG, sql_string, use_schema
from .lake_retry import LakeCommitUnknownError, is_lake_conflict, retry_lake_conflicts

WAREHOUSE_ENV_VAR = "SIRO_WAREHOUSE"
CATALOG_ENV_VAR = "SIRO_DUCKLAKE_CATALOG"
DATA_PATH_ENV_VAR = "SIRO_DUCKLAKE_DATA_PATH"
DUCKDB = "duckdb"
DUCKLAKE = "ducklake"

#: The extension wheels a lake needs (module `duckdb_extension_<name>`); httpfs only for s3://,
#: aws only when S3 credentials come from the AWS credential chain.
LAKE_EXTENSIONS = ("postgres_scanner", "ducklake")
S3_EXTENSIONS = ("httpfs",)
CREDENTIAL_CHAIN_EXTENSIONS = ("aws",)

#: What to set when S3 has no credentials: said by every error about them.
_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the process an IAM role "
    "(EKS IRSA, an instance profile) or AWS_PROFILE for the standard AWS credential chain"
)

class LakeUnavailableError(RuntimeError):
    """DuckLake cannot be opened with this installation (no extension wheel for this DuckDB)."""

    def __init__(self, message: str, extension: str | None = None):
        super().__init__(message)
        self.extension = extension


class LakeConnectError(RuntimeError):
    """Attaching the lake failed; the message never carries the catalog's password or S3 keys."""


@dataclass(frozen=True)
class LakeSettings:
    """Where a lake lives. `catalog` is a libpq DSN (it may hold a password: never shown).

    `data_path` is a directory or `s3://bucket/prefix/`; for S3 the conventional AWS_*
    settings apply (`endpoint_url` for a non-AWS store such as `http://127.0.0.1:9000`).
    """

    catalog: str = field(repr=False)
    data_path: str
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    """With temporary keys (STS: an assumed role, SSO): they are refused without it."""
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    scratch_directory: str | None = None
    """Local disk for DuckDB's spill files; the system temp directory when unset."""

    def __post_init__(self) -> None:
        # Registered where the settings are built, so any text scrubbed in this process
        # (retry logs, errors, CRM messages) is scrubbed of them.
        redaction.register(*self.secrets())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LakeSettings:
        """The documented variables: SIRO_DUCKLAKE_CATALOG, SIRO_DUCKLAKE_DATA_PATH, AWS_*."""
        env = os.environ if env is None else env
        missing = [name for name in (CATALOG_ENV_VAR, DATA_PATH_ENV_VAR) if not env.get(name)]
        if missing:
            raise LakeConnectError(f"{WAREHOUSE_ENV_VAR}={DUCKLAKE} needs {' and '.join(missing)}")
        return cls(
            catalog=env[CATALOG_ENV_VAR],
            data_path=env[DATA_PATH_ENV_VAR],
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
        )

    @property
    def on_s3(self) -> bool:
        """Whether the data files go to an S3-compatible store."""
        return self.data_path.startswith("s3://")

    @property
    def uses_credential_chain(self) -> bool:
        """Whether S3 credentials come from the AWS credential chain: on S3 with neither key set."""
        return self.on_s3 and not (self.aws_access_key_id or self.aws_secret_access_key)

    def data_path_with_slash(self) -> str:
        """The data path ending in `/`, as DuckLake joins file names onto it."""
        return self.data_path if self.data_path.endswith("/") else self.data_path + "/"

    def secrets(self) -> list[str]:
        """The values no message may contain."""
        values = [self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token]
        values += re.findall(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", self.catalog)
        values += re.findall(r"://[^:/@]+:([^@/]+)@", self.catalog)  # a URI's user:password@
        return [v.strip("'") for v in values if v]


def warehouse_mode(env: Mapping[str, str] | None = None) -> str:
    """`duckdb` (the default) or `ducklake`, from SIRO_WAREHOUSE."""
    env = os.environ if env is None else env
    mode = (env.get(WAREHOUSE_ENV_VAR) or DUCKDB).strip().lower()
    if mode not in (DUCKDB, DUCKLAKE):
        raise ValueError(f"{WAREHOUSE_ENV_VAR} must be {DUCKDB!r} or {DUCKLAKE!r}, not {mode!r}")
    return mode


def extension_file(name: str) -> Path:
    """The `<name>.duckdb_extension` the installed `duckdb-extension-<name>` wheel ships
    for this DuckDB version (the wheels hold `extensions/v<version>/<name>.duckdb_extension`)."""
    module = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LakeUnavailableError(
            f"the {name} extension is not installed: pip install duckdb-extension-{name.replace('_', '-')}"
            f"=={duckdb.__version__}, if PyPI has it for this DuckDB (1.5.5 is the newest packaged); "
            "DuckDB cannot INSTALL it without the network",
            extension=name,
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
        if found:
            return found[0]
    built = sorted(
        p.parent.name for loc in spec.submodule_search_locations for p in Path(loc).glob("extensions/*/*")
    )
    raise LakeUnavailableError(
        f"the installed {module} is built for DuckDB {', '.join(built) or 'another version'}, "
        f"but DuckDB {duckdb.__version__} is installed; DuckLake needs matching versions",
        extension=name,
    )


def extensions_for(settings: LakeSettings) -> tuple[str, ...]:
    """The extensions a connection to the lake `settings` names LOADs, in order."""
    names = LAKE_EXTENSIONS + (S3_EXTENSIONS if settings.on_s3 else ())
    return names + (CREDENTIAL_CHAIN_EXTENSIONS if settings.uses_credential_chain else ())


def lake_unavailable(*, s3: bool = False, credential_chain: bool = False) -> str | None:
    """Why a lake cannot be opened here (a sentence), or None when it can; `credential_chain`
    also asks for what S3 without keys needs."""
    names = LAKE_EXTENSIONS + (S3_EXTENSIONS if s3 or credential_chain else ())
    try:
        for name in names + (CREDENTIAL_CHAIN_EXTENSIONS if credential_chain else ()):
            extension_file(name)
    except LakeUnavailableError as exc:
        return str(exc)
    return None


def _load_extensions(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    loaded = {row[0] for row in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    for name in names:
        if name not in loaded:
            con.execute(f"LOAD {sql_string(extension_file(name))}")


def _s3_secret(settings: LakeSettings) -> str:
    if bool(settings.aws_access_key_id) != bool(settings.aws_secret_access_key):
        missing = "AWS_SECRET_ACCESS_KEY" if settings.aws_access_key_id else "AWS_ACCESS_KEY_ID"
        raise LakeConnectError(
            f"could not open the DuckLake at {settings.data_path}: {missing} is not set; "
            f"{_CREDENTIALS_HINT}"
        )
    if settings.uses_credential_chain:
        # REFRESH auto: an IAM role's credentials expire (an hour for IRSA), a connection may not.
        options = {"PROVIDER": "credential_chain", "REFRESH": "auto", "REGION": settings.aws_region}
    else:
        options = {"KEY_ID": settings.aws_access_key_id, "SECRET": settings.aws_secret_access_key,
                   "SESSION_TOKEN": settings.aws_session_token, "REGION": settings.aws_region}
    if settings.aws_endpoint_url:
        endpoint = urlsplit(settings.aws_endpoint_url)
        # A custom endpoint (moto, MinIO) serves buckets as paths, not as host names.
        options |= {"ENDPOINT": endpoint.netloc, "URL_STYLE": "path",
                    "USE_SSL": "true" if endpoint.scheme == "https" else "false"}
    body = ", ".join(
        f"{key} {value if key in _KEYWORD_OPTIONS else sql_string(value)}"
        for key, value in options.items() if value
    )
    return f"CREATE OR REPLACE SECRET siro_lake_s3 (TYPE s3, {body})"


# Options whose values are SQL keywords, not strings (a REGION may well be 'auto', as on R2).
_KEYWORD_OPTIONS = ("PROVIDER", "REFRESH", "USE_SSL")


def _create_s3_secret(con: duckdb.DuckDBPyConnection, settings: LakeSettings) -> None:
    try:
        con.execute(_s3_secret(settings))
    except duckdb.Error as exc:
        # The aws extension refuses a credential_chain secret when the chain finds nothing.
        if settings.uses_credential_chain and "secret validation failure" in str(exc).lower():
            raise LakeConnectError(
                f"could not open the DuckLake at {settings.data_path}: no AWS credentials found for S3 "
                f"({' '.join(_redacted(str(exc), settings.secrets()).split())}); {_CREDENTIALS_HINT}"
            ) from None
        raise


def _redacted(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


def _attach(settings: LakeSettings, read_only: bool, config: dict, schema: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config=config)
    try:
        try:
            _load_extensions(con, extensions_for(settings))
        except LakeUnavailableError as exc:
            if exc.extension not in CREDENTIAL_CHAIN_EXTENSIONS:
                raise
            raise LakeUnavailableError(
                f"{exc} (S3 without AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY reads the AWS credential "
                "chain, which the aws extension provides)", extension=exc.extension,
            ) from None
        if settings.on_s3:
            _create_s3_secret(con, settings)
        options = [f"DATA_PATH {sql_string(settings.data_path_with_slash())}", "DATA_INLINING_ROW_LIMIT 0"]
        if read_only:
            options.append("READ_ONLY")
        con.execute(
            f"ATTACH {sql_string('ducklake:postgres:' + settings.catalog)} AS {WAREHOUSE_CATALOG} "
            f"({', '.join(options)})"
        )
        con.execute(f"USE {WAREHOUSE_CATALOG}")
        use_schema(con, schema, create=not read_only)
        con.execute("SET TimeZone = 'UTC'")
    except BaseException:
        con.close()
        raise
    return con


def open_lake(
    settings: LakeSettings, *, read_only: bool = False, config: dict | None = None, schema: str = DEFAULT_SCHEMA
) -> duckdb.DuckDBPyConnection:
    """Connect to the lake `settings` names, as catalog `warehouse` with default schema
    `schema` (so `recordings` and `siro.<table>` work).

    In UTC like every warehouse connection; `config` is DuckDB's (memory_limit defaults to
    512MB, spill files go to the local scratch directory). Small writes are not inlined
    into the catalog: inlined rows make every concurrent delete conflict table-wide.
    The first connections to a new lake race to create its catalog tables in PostgreSQL;
    the loser's ATTACH is retried like a commit conflict.
    """
    scratch = Path(settings.scratch_directory or tempfile.gettempdir()) / "siro-lake.tmp"
    config = {"memory_limit": DEFAULT_MEMORY_LIMIT, "temp_directory": str(scratch), **(config or {})}
    if not settings.on_s3 and not read_only:
        Path(settings.data_path).mkdir(parents=True, exist_ok=True)
    try:
        return retry_lake_conflicts(lambda: _attach(settings, read_only, config, schema), retry_on=_is_init_race)
    except (duckdb.Error, LakeCommitUnknownError) as exc:
        # `from None`: the original exception's text may quote the DSN or the keys. An
        # ATTACH cut off while creating the catalog is safe to open again, so it is reported
        # as a failure to open.
        raise LakeConnectError(
            f"could not open the DuckLake at {settings.data_path}: "
            f"{_redacted(str(exc), settings.secrets())}"
        ) from None


def lake_exists(settings: LakeSettings) -> bool:
    """Whether the lake's catalog has been created (by a first writer's ATTACH); a read-only
    ATTACH of a catalog never written refuses, so readers ask this first."""
    try:
        open_lake(settings, read_only=True).close()
    except LakeConnectError as exc:
        if _NEVER_CREATED in str(exc):
            return False
        raise
    return True


# DuckLake's refusal of a READ_ONLY ATTACH to a catalog without its tables.
_NEVER_CREATED = "creating a new DuckLake is explicitly disabled"


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con`'s warehouse catalog is a DuckLake (else a DuckDB file)."""
    row = con.execute(
        "SELECT type FROM duckdb_databases() WHERE database_name = ?", [WAREHOUSE_CATALOG]
    ).fetchone()
    return row is not None and row[0] == DUCKLAKE


def _is_init_race(exc: BaseException) -> bool:
    # Two first ATTACHes both create the catalog tables: PostgreSQL refuses the loser's
    # ("already exists", or a duplicate key in pg_type), and by the retry the catalog is there.
    text = str(exc).lower()
    return is_lake_conflict(exc) or (
        isinstance(exc, duckdb.Error) and "failed to initialize ducklake" in text
        and ("already exists" in text or "duplicate key" in text)
    )


__all__ = [
    "CATALOG_ENV_VAR",
    "DATA_PATH_ENV_VAR",
    "DUCKDB",
    "DUCKLAKE",
    "LakeConnectError",
    "LakeSettings",
    "LakeUnavailableError",
    "WAREHOUSE_ENV_VAR",
    "extension_file",
    "extensions_for",
    "is_lake",
    "lake_exists",
    "lake_unavailable",
    "open_lake",
    "warehouse_mode",
]
