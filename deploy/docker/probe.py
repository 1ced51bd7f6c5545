#!/usr/bin/env python
"""cardcore-probe: readiness waits and health checks inside the cardcore images.

Why a separate script rather than `cardcore` sub-commands: it is container plumbing (the prestart
of every image and its HEALTHCHECK), it must start fast on every probe (each mode imports only what
it needs), and it reads the same settings as the services, so it checks exactly the databases the
service will use.

    cardcore-probe wait TARGET...   retry until every target answers (CARDCORE_WAIT_TIMEOUT s)
    cardcore-probe check TARGET...  check once (exit 1 naming the failing target)
    cardcore-probe http URL         HEALTHCHECK of an HTTP service: 2xx within 3 s
    cardcore-probe celery           HEALTHCHECK of a Celery worker: a node on this host answers

Targets: `servers` (every database server of the control and shard URLs accepts a login),
`control` / `shards:<service>` (the database answers and `cardcore db upgrade` has created the
schema's version table), `legacy-server`, `legacy` (the CCS), `redis`, `broker`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

CONNECT_TIMEOUT_SECONDS = 3
RETRY_SECONDS = 1.0
REPORT_EVERY_SECONDS = 10.0
DEFAULT_WAIT_SECONDS = 180.0


class NotReady(Exception):
    """A target did not answer (yet)."""


def _settings() -> Any:
    from cardcore_kernel.settings import get_settings

    return get_settings()


def _sql_check(url: str, version_table: str | None = None) -> None:
    """Log in to the database a URL names; optionally require a schema's version table."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connect_args = {} if parsed.get_backend_name() == "sqlite" else {"connect_timeout": 3}
    engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            if version_table and not sa.inspect(connection).has_table(version_table):
                raise NotReady(f"{version_table} missing in {parsed.database} (init not done?)")
    except sa.exc.SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise NotReady(f"{parsed.render_as_string(hide_password=True)}: {reason}") from None
    finally:
        engine.dispose()


def _server_url(url: str) -> str:
    """The same server's maintenance database: reachable before any cardcore database exists."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        parsed = parsed.set(database="postgres")
    elif backend in ("mysql", "mariadb"):
        parsed = parsed.set(database="")
    return parsed.render_as_string(hide_password=False)


def _redis_ping(url: str) -> None:
    """RESP PING over a plain socket: no client library needed in images that have none."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return  # a non-Redis broker (e.g. SQLite in local mode) has nothing to ping
    if parts.scheme == "rediss":
        raise NotReady("rediss:// is not supported by the probe")
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 6379), timeout=CONNECT_TIMEOUT_SECONDS
        ) as conn:
            if parts.password:
                user = parts.username or "default"
                conn.sendall(_resp("AUTH", user, parts.password))
                _expect(conn, b"+OK")
            conn.sendall(_resp("PING"))
            _expect(conn, b"+PONG")
    except OSError as exc:
        raise NotReady(f"redis {parts.hostname}:{parts.port or 6379}: {exc}") from None


def _resp(*words: str) -> bytes:
    encoded = [word.encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded
    )


def _expect(conn: socket.socket, prefix: bytes) -> None:
    reply = conn.recv(256)
    if not reply.startswith(prefix):
        raise NotReady(f"redis answered {reply[:60]!r}")


def _target(name: str) -> Callable[[], None]:
    """The check a target name stands for."""
    if name == "servers":

        def servers() -> None:
            settings = _settings()
            urls = [settings.control_database_url] + [
                settings.shard_url("probe", shard) for shard in range(settings.shards)
            ]
            for url in dict.fromkeys(_server_url(url) for url in urls):
                _sql_check(url)

        return servers
    if name == "control":
        return lambda: _sql_check(_settings().control_database_url, "alembic_version_control")
    if name.startswith("shards:"):
        service = name.split(":", 1)[1]

        def shards() -> None:
            settings = _settings()
            for shard in range(settings.shards):
                _sql_check(settings.shard_url(service, shard), f"alembic_version_{service}")

        return shards
    if name == "legacy-server":
        return lambda: _sql_check(_server_url(_settings().legacy_url))
    if name == "legacy":
        return lambda: _sql_check(_settings().legacy_url)
    if name == "redis":

        def redis() -> None:
            url = _settings().redis_url
            if not url:
                raise NotReady("CARDCORE_REDIS_URL is not set")
            _redis_ping(url)

        return redis
    if name == "broker":
        return lambda: _redis_ping(_settings().celery_broker_url)
    raise SystemExit(f"cardcore-probe: unknown target {name!r}")


def wait(names: list[str]) -> int:
    timeout = float(os.environ.get("CARDCORE_WAIT_TIMEOUT", DEFAULT_WAIT_SECONDS))
    started = time.monotonic()
    last_report = started
    pending = {name: _target(name) for name in names}
    errors: dict[str, str] = {}
    while pending:
        for name, check in list(pending.items()):
            try:
                check()
            except NotReady as exc:
                errors[name] = str(exc)
            else:
                del pending[name]
                errors.pop(name, None)
        if not pending:
            break
        now = time.monotonic()
        if now - started > timeout:
            for name in pending:
                print(
                    f"cardcore-probe: {name} not ready after {timeout:.0f}s: {errors[name]}",
                    file=sys.stderr,
                )
            return 1
        if now - last_report >= REPORT_EVERY_SECONDS:
            print(f"cardcore-probe: waiting for {', '.join(pending)}", file=sys.stderr)
            last_report = now
        time.sleep(RETRY_SECONDS)
    elapsed = time.monotonic() - started
    print(f"cardcore-probe: ready ({', '.join(names)}) in {elapsed:.1f}s", file=sys.stderr)
    return 0


def check(names: list[str]) -> int:
    for name in names:
        try:
            _target(name)()
        except NotReady as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
    return 0


def http(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_SECONDS) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


def celery() -> int:
    """Ping the workers through the broker; healthy when one on this host answers."""
    from celery import Celery

    app = Celery(broker=_settings().celery_broker_url)
    host = socket.gethostname()
    # ping() always waits the whole timeout for every worker's answer; a loaded host needs seconds.
    replies = app.control.ping(timeout=float(os.environ.get("CARDCORE_PROBE_PING_TIMEOUT", 5)))
    answered = [node for reply in replies for node in reply]
    if any(node.rsplit("@", 1)[-1] == host for node in answered):
        return 0
    print(f"no Celery worker on {host} answered (answers: {answered or 'none'})", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] in ("wait", "check"):
        return wait(argv[1:]) if argv[0] == "wait" else check(argv[1:])
    if len(argv) == 2 and argv[0] == "http":
        return http(argv[1])
    if argv == ["celery"]:
        return celery()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
