"""The gateway's processes: `cardcore gateway serve` / `python -m cardcore_gateway`.

    cardcore gateway serve [--host 0.0.0.0] [--port 8080] [--workers N]
    python -m cardcore_gateway ...                    (the same, for the container image)

One process runs the `Gateway` app on the front of server.py under uvloop: startup (pollers,
probes, the upstream client), serve until SIGTERM/SIGINT, then stop accepting, close idle
keep-alive connections, let requests in progress finish (`SHUTDOWN_GRACE` seconds at most) and
shut the app down. `--workers N` forks N such processes that each accept on the same port
(SO_REUSEPORT: the kernel spreads connections), each with its own event loop, pools and caches;
shared state (keys, rate limits, bucket routes, freezes) lives in the control database / Redis
as with several replicas. The parent forwards SIGTERM/SIGINT and exits non-zero if a worker
failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

from cardcore_gateway.server import HttpProtocol, ServerState

log = logging.getLogger("cardcore.gateway.server")
SHUTDOWN_GRACE = 10.0


def bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def _serve_forever(sock: socket.socket) -> None:
    from cardcore_gateway.app import app  # imported in the worker: one Gateway per process

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await app.startup()
    state = ServerState()
    server = await loop.create_server(lambda: HttpProtocol(app, state), sock=sock)
    try:
        await stop.wait()
    finally:
        state.stopping = True
        server.close()
        for conn in list(state.connections):
            if conn.running is None:  # idle keep-alive connections go now
                conn.transport.close()
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=SHUTDOWN_GRACE)
        for conn in list(state.connections):
            conn.transport.close()
        await app.shutdown()


def run_worker(sock: socket.socket) -> None:
    try:
        import uvloop

        uvloop.run(_serve_forever(sock))
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists
        asyncio.run(_serve_forever(sock))


def serve(host: str, port: int, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT; with several workers, fork them and wait for them all."""
    if workers <= 1:
        run_worker(bind(host, port, reuse_port=False))
        return 0
    children: list[int] = []
    for _ in range(workers):
        sock = bind(host, port, reuse_port=True)
        pid = os.fork()
        if pid == 0:  # the worker: its own socket on the shared port, its own loop
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                run_worker(sock)
            except BaseException:
                log.exception("gateway_worker_failed")
                code = 1
            os._exit(code)
        sock.close()
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for child in children:
        while True:
            try:
                _pid, status = os.waitpid(child, 0)
                break
            except ChildProcessError:
                status = 0
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
        failed |= os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cardcore_gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GATEWAY_WORKERS", "1")))
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return serve(args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
