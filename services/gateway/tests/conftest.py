"""Fixtures for gateway tests: a control database, echo upstreams and gateways as real processes.

Only the control-database schemas the gateway needs (kernel control + gateway) are applied, so
these tests do not depend on other services' migrations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from cardcore_gateway.schema import SCHEMA
from cardcore_kernel.schema import CONTROL_SCHEMA
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import ServiceProcess, StackEnv

TESTS_DIR = Path(__file__).parent
GATEWAY_APP = "cardcore_gateway.app:app"
ECHO_APP = "gateway_echo:app"
REDIS_URL = "redis://127.0.0.1:6379/0"
START_TIMEOUT = 120.0  # generous: CI machines shared with other suites can be very loaded
BOOTSTRAP_KEY = "test-bootstrap-" + uuid.uuid4().hex

TEST_ROUTES = {
    "defaults": {"timeout": 2.0, "retries": 2, "max_body": 4096},
    "pools": {"core": [], "legacy": [], "accounts": []},
    "routes": [
        {
            "name": "authorizations",
            "prefix": "/v1/authorizations",
            "pool": "core",
            "scopes": ["payments"],
            "inspect_body": True,
            "bucket_pools": ["legacy", "core"],
        },
        {
            "name": "balance",
            "regex": "/v1/accounts/[^/]+/balance",
            "methods": ["GET"],
            "pool": "core",
            "scopes": ["accounts", "payments"],
            "bucket_pools": ["legacy", "core"],
        },
        {
            "name": "accounts",
            "prefix": "/v1/accounts",
            "methods": ["GET", "POST"],
            "pool": "accounts",
            "scopes": ["accounts"],
        },
        {
            "name": "misc",
            "regex": "/(internal|v1/misc)/.*",
            "pool": "core",
            "scopes": ["payments"],
        },
        {
            "name": "limited",
            "prefix": "/v1/limited",
            "pool": "core",
            "scopes": ["accounts"],
            "rate": 0.2,
            "burst": 3,
        },
        {
            "name": "slow",
            "prefix": "/v1/slow",
            "pool": "core",
            "scopes": ["payments"],
            "timeout": 0.5,
        },
    ],
}


def upgrade_control(env: StackEnv) -> CardcoreSettings:
    settings = CardcoreSettings(
        data_dir=env.data_dir,
        shard_count=env.shards,
        control_url=env.env.get("CARDCORE_CONTROL_URL"),
    )
    CONTROL_SCHEMA.upgrade(settings)
    SCHEMA.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
def control_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A SQLite control database shared by the process tests that do not vary the backend."""
    stack = StackEnv(backend="sqlite", data_dir=tmp_path_factory.mktemp("gw") / "cardcore")
    upgrade_control(stack)
    yield stack.env


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StackEnv]:
    """A fresh control database on each backend (PostgreSQL databases are dropped after)."""
    stack = StackEnv(backend=request.param, data_dir=tmp_path / "cardcore")
    upgrade_control(stack)
    yield stack
    stack.drop_databases()


@pytest.fixture(scope="session")
def routes_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routes") / "routes.json"
    path.write_text(json.dumps(TEST_ROUTES))
    return path


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


EchoFactory = Callable[[str], ServiceProcess]


@pytest.fixture(scope="module")
def echo(logs_dir: Path) -> Iterator[EchoFactory]:
    """Start echo upstreams named as asked; all are stopped at the end of the module."""
    started: list[ServiceProcess] = []

    def start(name: str) -> ServiceProcess:
        process = ServiceProcess(
            ECHO_APP,
            env={"ECHO_NAME": name, "PYTHONPATH": str(TESTS_DIR)},
            log_path=logs_dir / f"echo-{name}.log",
        ).start(timeout=START_TIMEOUT)
        started.append(process)
        return process

    yield start
    stop_all(started)


class GatewayProcess(ServiceProcess):
    """A gateway on its own front (`python -m cardcore_gateway`), or under uvicorn when asked."""

    def __init__(self, *args: object, front: str = "native", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.front = front

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        if self.front != "native":
            return super().start(timeout)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        command = [sys.executable, "-m", "cardcore_gateway", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"gateway not ready on {self.url} after {timeout}s")


GatewayFactory = Callable[..., ServiceProcess]
ReplicasFactory = Callable[..., list[ServiceProcess]]


def stop_all(processes: list[ServiceProcess]) -> None:
    """Terminate every process first, then wait: stopping one by one costs seconds each."""
    for process in processes:
        if process.process is not None and process.process.poll() is None:
            process.process.terminate()
    for process in processes:
        process.stop()


@pytest.fixture(scope="module")
def gateway_replicas(
    control_env: dict[str, str], routes_file: Path, logs_dir: Path
) -> Iterator[ReplicasFactory]:
    """Start `count` gateway processes at once (in parallel): `start(pools, count=2, env=...)`."""
    started: list[ServiceProcess] = []

    def start(
        pools: dict[str, list[str]],
        count: int = 1,
        env: dict[str, str] | None = None,
        stack_env: dict[str, str] | None = None,
        front: str = os.environ.get("GATEWAY_TEST_FRONT", "native"),
    ) -> list[ServiceProcess]:
        full_env = {
            "CARDCORE_REDIS_URL": "",
            **(stack_env or control_env),
            "GATEWAY_ROUTES_FILE": str(routes_file),
            "GATEWAY_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
            "GATEWAY_PROBE_INTERVAL": "60",
            **{f"GATEWAY_POOL_{name.upper()}": ",".join(urls) for name, urls in pools.items()},
            **(env or {}),
        }
        processes = [
            GatewayProcess(
                GATEWAY_APP,
                env={**full_env, "GATEWAY_INSTANCE_NAME": f"gateway-{n}"},
                log_path=logs_dir / f"gateway-{uuid.uuid4().hex[:6]}.log",
                front=front,
            )
            for n in range(count)
        ]
        started.extend(processes)
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(lambda p: p.start(timeout=START_TIMEOUT), processes))
        return processes

    yield start
    stop_all(started)


@pytest.fixture(scope="module")
def gateway_factory(gateway_replicas: ReplicasFactory) -> GatewayFactory:
    """Start one gateway process: `start(pools={"core": [url, ...]}, env={...}, stack_env=...)`."""

    def start(
        pools: dict[str, list[str]],
        env: dict[str, str] | None = None,
        stack_env: dict[str, str] | None = None,
        front: str = os.environ.get("GATEWAY_TEST_FRONT", "native"),
    ) -> ServiceProcess:
        return gateway_replicas(pools, 1, env=env, stack_env=stack_env, front=front)[0]

    return start


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix in the shared Redis, deleted after the test."""
    prefix = f"cctest:gw:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def auth(key: str = BOOTSTRAP_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def metric_value(base_url: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` on a /metrics page."""
    text = httpx.get(base_url + "/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
