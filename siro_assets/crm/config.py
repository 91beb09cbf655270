"""Which sink each CRM connection writes to, and its settings.

`SIRO_CRM_CONNECTIONS` names a YAML file mapping integration connection ids (and `"*"`
for the rest) to a sink. Secrets are written `{env: NAME}` and resolved from the
environment only; the file never holds them. Without the file, `SIRO_CRM_SINK`
(`outbox` by default) applies to every connection with settings from the documented
variables. Secret values are `SecretStr`: they never show in a repr, log or error.
They are stripped of surrounding whitespace when loaded (a Kubernetes secret made with
`--from-file` or a CRLF `.env` ends in a newline, which no HTTP header can carry), a
secret with any other non-printable character is refused naming the setting only, and
every secret is registered with `siro_assets.redaction` so error text is scrubbed of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, field_validator

from .. import redaction

DEFAULT_ROUTE = "*"
SINKS = ("outbox", "salesforce", "hubspot", "http")

SALESFORCE_OBJECTS = {
    "opportunity": "Opportunity",
    "account": "Account",
    "contact": "Contact",
    "lead": "Lead",
    "engagement": "Event",
    "user": "User",
}
HUBSPOT_OBJECTS = {
    "opportunity": "deals",
    "account": "companies",
    "contact": "contacts",
    "lead": "leads",
    "engagement": "meetings",
}


class CrmConfigError(ValueError):
    """The routing file or the environment does not describe a usable configuration."""


# Every setting that holds a secret, in any sink.
_SECRET_FIELDS = ("client_id", "client_secret", "token")


def _problems(exc: ValidationError, name=lambda field: field, tag: Any = None) -> str:
    # Pydantic's message can echo input values; name only the settings and reasons.
    def where(loc: tuple) -> str:
        loc = loc[1:] if loc and loc[0] == tag else loc   # the union's sink tag
        return name(".".join(map(str, loc))) if loc else "sink"

    return "; ".join(f"{where(e['loc'])}: {e['msg']}" for e in exc.errors())


class _Settings(BaseModel):
    # Errors name the setting, never echo its input: a refused secret must not be quoted.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    write_nulls: bool = Field(
        default=False, description="Send nulls (clearing CRM fields). Off: a null never overwrites a value."
    )
    max_attempts: int = Field(default=5, ge=1, description="Attempts per request on 5xx, timeouts, 429.")

    @field_validator(*_SECRET_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _clean_secret(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        cleaned = raw.strip()
        if not cleaned:
            raise ValueError("is empty")
        if not (cleaned.isascii() and cleaned.isprintable()):
            raise ValueError("contains a character that is not printable ASCII (value not shown)")
        redaction.register(cleaned)
        return cleaned

    def fingerprint(self) -> str:
        """A hash of the settings without their secrets: a changed configuration re-tries rejects."""
        public = self.model_dump(mode="json", exclude=_secret_fields(self))
        return hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()[:16]


def _secret_fields(settings: BaseModel) -> set[str]:
    return {name for name, value in settings if isinstance(value, SecretStr)}


class OutboxSettings(_Settings):
    """Append due writes to `siro.crm_outbox` for a reverse-ETL tool to pick up."""

    sink: Literal["outbox"] = "outbox"


class SalesforceSettings(_Settings):
    """Salesforce REST: client-credentials OAuth, sObject Collections updates."""

    sink: Literal["salesforce"] = "salesforce"
    login_url: str = Field(description="Token endpoint host, e.g. https://acme.my.salesforce.com.")
    client_id: SecretStr = Field(repr=False)
    client_secret: SecretStr = Field(repr=False)
    api_version: str = "62.0"
    object_types: dict[str, str] = Field(default_factory=lambda: dict(SALESFORCE_OBJECTS))
    batch_size: int = Field(default=200, ge=1, le=200)


class HubSpotSettings(_Settings):
    """HubSpot CRM v3: private-app bearer token, batch updates."""

    sink: Literal["hubspot"] = "hubspot"
    base_url: str = "https://api.hubapi.com"
    token: SecretStr = Field(repr=False)
    object_types: dict[str, str] = Field(default_factory=lambda: dict(HUBSPOT_OBJECTS))
    batch_size: int = Field(default=100, ge=1, le=100)
    requests_per_second: float = Field(default=10.0, gt=0)
    rate_limit_window_seconds: float = Field(default=10.0, ge=0)


class HttpSettings(_Settings):
    """Any CRM or middleware: `PATCH {url}/{crmModelName}/{externalId}`."""

    sink: Literal["http"] = "http"
    url: str
    token: SecretStr | None = Field(default=None, repr=False)


ConnectionSettings = Annotated[
    Union[OutboxSettings, SalesforceSettings, HubSpotSettings, HttpSettings], Field(discriminator="sink")
]
_ADAPTER: TypeAdapter = TypeAdapter(ConnectionSettings)

# Settings that hold a secret: the routing file must reference them as {env: NAME}.
_SECRET_KEYS = {"client_secret", "token"}


class Routing(BaseModel):
    """Connection id -> settings, with an optional `"*"` default."""

    model_config = ConfigDict(frozen=True)

    connections: dict[str, ConnectionSettings] = Field(default_factory=dict)

    def for_connection(self, connection_id: str) -> ConnectionSettings | None:
        """The settings for `connection_id`, the `"*"` entry, or None when neither exists."""
        return self.connections.get(connection_id) or self.connections.get(DEFAULT_ROUTE)


def _resolve_env(value: Any, environ: Mapping[str, str], where: str) -> Any:
    if isinstance(value, dict) and set(value) == {"env"}:
        name = value["env"]
        if not isinstance(name, str) or not name:
            raise CrmConfigError(f"{where}: `env` must name an environment variable")
        if not environ.get(name):
            raise CrmConfigError(f"{where}: environment variable {name} is not set")
        return environ[name]
    if isinstance(value, dict):
        return {k: _resolve_env(v, environ, f"{where}.{k}") for k, v in value.items()}
    return value


def _parse_connection(connection_id: str, raw: Any, environ: Mapping[str, str]) -> ConnectionSettings:
    where = f"connections[{connection_id!r}]"
    if not isinstance(raw, dict):
        raise CrmConfigError(f"{where} must be a mapping with a `sink` key")
    for key in _SECRET_KEYS & set(raw):
        if not (isinstance(raw[key], dict) and set(raw[key]) == {"env"}):
            raise CrmConfigError(f"{where}.{key} must be written {{env: NAME}}: secrets come from the environment only")
    resolved = {k: _resolve_env(v, environ, f"{where}.{k}") for k, v in raw.items()}
    sources = {k: v["env"] for k, v in raw.items() if isinstance(v, dict) and set(v) == {"env"}}
    try:
        return _ADAPTER.validate_python(resolved)
    except ValidationError as exc:
        problems = _problems(
            exc, lambda field: f"{field} (from {sources[field]})" if field in sources else field, tag=raw.get("sink")
        )
        raise CrmConfigError(f"{where}: {problems}") from None


def load_routing_file(path: str | Path, environ: Mapping[str, str] | None = None) -> Routing:
    """Read a routing file: `connections:` mapping ids (and `"*"`) to sink settings."""
    environ = os.environ if environ is None else environ
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CrmConfigError(f"cannot read CRM routing file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CrmConfigError(f"CRM routing file {path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("connections"), dict):
        raise CrmConfigError(f"CRM routing file {path} must have a `connections:` mapping")
    connections = {
        str(cid): _parse_connection(str(cid), raw, environ) for cid, raw in document["connections"].items()
    }
    return Routing(connections=connections)


# Without a routing file: each sink's settings and the variable each one is read from.
_ENV_SETTINGS: dict[str, tuple[type[_Settings], dict[str, str], tuple[str, ...]]] = {
    "outbox": (OutboxSettings, {}, ()),
    "salesforce": (SalesforceSettings, {
        "login_url": "SIRO_SALESFORCE_LOGIN_URL", "client_id": "SIRO_SALESFORCE_CLIENT_ID",
        "client_secret": "SIRO_SALESFORCE_CLIENT_SECRET", "api_version": "SIRO_SALESFORCE_API_VERSION",
    }, ("login_url", "client_id", "client_secret")),
    "hubspot": (HubSpotSettings, {"base_url": "SIRO_HUBSPOT_BASE_URL", "token": "SIRO_HUBSPOT_TOKEN"}, ("token",)),
    "http": (HttpSettings, {"url": "SIRO_CRM_WRITEBACK_URL", "token": "SIRO_CRM_TOKEN"}, ("url",)),
}


def _from_env(environ: Mapping[str, str]) -> ConnectionSettings:
    sink = environ.get("SIRO_CRM_SINK", "outbox").strip().lower() or "outbox"
    if sink not in _ENV_SETTINGS:
        raise CrmConfigError(f"SIRO_CRM_SINK must be one of {', '.join(SINKS)}, got {sink!r}")
    model, variables, required = _ENV_SETTINGS[sink]
    values = {name: environ[variable] for name, variable in variables.items() if environ.get(variable)}
    for name in required:
        if name not in values:
            raise CrmConfigError(f"SIRO_CRM_SINK={sink} needs the environment variable {variables[name]}")
    try:
        return model(**values)
    except ValidationError as exc:
        raise CrmConfigError(f"SIRO_CRM_SINK={sink}: {_problems(exc, lambda f: variables.get(f, f))}") from None


def load_routing(environ: Mapping[str, str] | None = None) -> Routing:
    """The routing in force: the `SIRO_CRM_CONNECTIONS` file, or `SIRO_CRM_SINK` for every connection."""
    environ = os.environ if environ is None else environ
    path = environ.get("SIRO_CRM_CONNECTIONS", "").strip()
    if path:
        return load_routing_file(path, environ)
    return Routing(connections={DEFAULT_ROUTE: _from_env(environ)})
