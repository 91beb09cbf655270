"""A throwaway PostgreSQL cluster for tests: `initdb` into a temp dir, `pg_ctl start` on 127.0.0.1.

Debian installs the server binaries under /usr/lib/postgresql/<major>/bin, outside PATH.
initdb and postgres refuse to run as root, so as root the cluster belongs to the
`postgres` system user (commands go through `runuser`), in a temp dir that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER_USER = "dagster"


@dataclass(frozen=True)
class PostgresServer:
    """Where a running cluster listens, and the role and database tests connect with."""

    host: str
    port: int
    user: str
    database: str
    password: str = field(repr=False)

    def dagster_env(self) -> dict[str, str]:
        """The conventional DAGSTER_POSTGRES_* variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_POSTGRES_HOST": self.host,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
            "DAGSTER_POSTGRES_DB": self.database,
        }


def find_postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb, or one on PATH."""
    def major(path: str) -> int:
        try:
            return int(Path(path).parent.parent.name)
        except ValueError:
            return -1

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major, reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_cluster_owner(argv: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


@contextmanager
def running_cluster(bin_dir: Path, database: str = "dagster") -> Iterator[PostgresServer]:
    """Start a fresh cluster on a free 127.0.0.1 port; stop it and delete its files on exit.

    Password authentication (scram-sha-256) over TCP, so the password in the
    DAGSTER_POSTGRES_PASSWORD variable is really used. fsync is off: the data is thrown away.
    """
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="siro-pg-"))
    password = "pg-test-" + os.urandom(6).hex()
    port = _free_port()
    try:
        if owner:
            entry = pwd.getpwnam(owner)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if owner:
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        data, log = root / "data", root / "server.log"

        def run(argv: list[str]) -> None:
            result = subprocess.run(
                _as_cluster_owner(argv, owner), capture_output=True, text=True, timeout=120
            )
            if result.returncode != 0:
                server_log = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}{server_log}")

        run([str(bin_dir / "initdb"), "-D", str(data), "-U", CLUSTER_USER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync"])
        run([str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-l", str(log),
             "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"])
        try:
            env = {**os.environ, "PGPASSWORD": password}
            subprocess.run(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", CLUSTER_USER, database],
                env=env, check=True, capture_output=True, timeout=60,
            )
            yield PostgresServer("127.0.0.1", port, CLUSTER_USER, database, password)
        finally:
            run([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
