"""The private parts a chaos scenario may break: its own Redis, its own PostgreSQL clusters.

A scenario must be able to stop a database or Redis without touching anyone else's, so each one
starts servers of its own on free 127.0.0.1 ports in a temporary directory and removes them at
the end. PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from cardcore_kernel.testing import ServiceProcess, free_port

PG_BIN = Path(os.environ.get("CARDCORE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PgCluster:
    """A throw-away PostgreSQL cluster that can be stopped and restarted.

    Trust auth; fsync off, but synchronous_commit stays on: a commit's WAL is written before it
    is acknowledged, so a killed server (not a killed machine) loses nothing it acknowledged.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / name
        self.data = self.dir / "data"
        self.port = free_port()

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PgCluster:
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self.start()

    def start(self) -> PgCluster:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.dir / "postgres.log"),
                    "-w",
                    "-o",
                    options,
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients can tell: connections drop, no goodbye."""
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            check=False,
            capture_output=True,
        )


class PrivateRedis:
    """`redis-server` without persistence on a free port; stop() and start() again at will."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return self
            time.sleep(0.05)
        raise TimeoutError(f"redis-server not answering on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def keys(self, pattern: str) -> list[str]:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "--scan", "--pattern", pattern],
            capture_output=True,
            text=True,
        )
        return [line for line in out.stdout.splitlines() if line]


class Stack:
    """accounts, `ledgers` ledger replicas behind the gateway's `core` pool, and the gateway."""

    def __init__(self, env: dict[str, str], logs: Path, api_key: str, ledgers: int = 2) -> None:
        ports = {
            "accounts": free_port(),
            "gateway": free_port(),
            **{f"ledger{n}": free_port() for n in range(ledgers)},
        }
        url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        core = [url[f"ledger{n}"] for n in range(ledgers)]
        self.env = {
            **env,
            "CARDCORE_ACCOUNTS_URL": url["accounts"],
            "CARDCORE_LEDGER_URL": core[0],
            "CARDCORE_GATEWAY_URL": url["gateway"],
            "GATEWAY_BOOTSTRAP_KEY": api_key,
            "GATEWAY_POOL_ACCOUNTS": url["accounts"],
            "GATEWAY_POOL_CORE": ",".join(core),
            "GATEWAY_PROBE_INTERVAL": "0.5",
            "GATEWAY_PROBE_TIMEOUT": "0.5",
            "GATEWAY_ACCESS_LOG": "false",
        }
        logs.mkdir(parents=True, exist_ok=True)
        self.ledgers = [
            ServiceProcess(
                "cardcore_ledger.api:app", self.env, ports[f"ledger{n}"], logs / f"ledger{n}.log"
            )
            for n in range(ledgers)
        ]
        self.accounts = ServiceProcess(
            "cardcore_accounts.api:app", self.env, ports["accounts"], logs / "accounts.log"
        )
        self.gateway = ServiceProcess(
            "cardcore_gateway.app:app", self.env, ports["gateway"], logs / "gateway.log"
        )
        self._started: list[ServiceProcess] = []

    def start(self) -> Stack:
        for process in (*self.ledgers, self.accounts, self.gateway):
            self._started.append(process.start())
        return self

    def stop(self) -> None:
        for process in reversed(self._started):
            process.stop()

    def metric(self, name: str) -> float:
        """The sum of a gateway metric over all its labels (from `/metrics`)."""
        text = httpx.get(self.gateway.url + "/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )
