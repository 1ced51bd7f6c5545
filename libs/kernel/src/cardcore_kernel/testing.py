"""Helpers for tests that cross process boundaries: isolated stacks and real service processes.

`StackEnv` describes one throw-away stack (SQLite files in a temp dir, or uniquely named
PostgreSQL databases that it creates and drops); `ServiceProcess` runs a service under uvicorn on a
free 127.0.0.1 port and waits until its `/readyz` answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import sqlalchemy as sa

PG_SERVER = os.environ.get("CARDCORE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StackEnv:
    """Environment variables for one isolated stack with `shards` shards."""

    backend: str
    data_dir: Path
    shards: int = 2
    prefix: str = field(default_factory=lambda: f"cct{uuid.uuid4().hex[:10]}")

    @property
    def env(self) -> dict[str, str]:
        env = {
            "CARDCORE_DATA_DIR": str(self.data_dir),
            "CARDCORE_SHARD_COUNT": str(self.shards),
            "CARDCORE_BROKER_URL": f"sqla+sqlite:///{self.data_dir / 'broker.db'}",
        }
        if self.backend == "postgres":
            env["CARDCORE_CONTROL_URL"] = f"{PG_SERVER}/{self.prefix}_control"
            env["CARDCORE_SHARD_URLS"] = ",".join(
                f"{PG_SERVER}/{self.prefix}_{{service}}_{n}" for n in range(self.shards)
            )
        return env

    def drop_databases(self) -> None:
        if self.backend != "postgres":
            return
        admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            names = conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                {"p": f"{self.prefix}%"},
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class ServiceProcess:
    """`uvicorn <app>` as a real child process on 127.0.0.1, ready when `/readyz` says 200."""

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        port: int | None = None,
        log_path: Path | None = None,
        ready_path: str = "/readyz",
    ) -> None:
        self.app = app
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                self.app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.app} exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.app} not ready on {self.url} after {timeout}s")

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
