"""The gateway's own HTTP/1.1 front (server.py) on the wire, with raw sockets: pipelining, HTTP/1.0,
`Expect: 100-continue`, HEAD, malformed requests, several worker processes on one port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from cardcore_kernel.ids import child_id
from cardcore_kernel.testing import free_port
from conftest import BOOTSTRAP_KEY, EchoFactory, GatewayFactory, auth

ACC = child_id("account", 3)


@pytest.fixture(scope="module")
def gateway(echo: EchoFactory, gateway_factory: GatewayFactory) -> tuple[str, int]:
    core = echo("core").url
    process = gateway_factory({"core": [core], "accounts": [core]}, front="native")
    return "127.0.0.1", process.port


def request(method: str, path: str, body: bytes = b"", version: str = "1.1") -> bytes:
    return (
        f"{method} {path} HTTP/{version}\r\nHost: gw\r\nAuthorization: Bearer {BOOTSTRAP_KEY}"
        f"\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def read_response(
    sock: socket.socket, buffer: bytearray, head_only: bool = False
) -> tuple[bytes, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {
        k.decode().lower(): v.decode().strip()
        for k, _, v in (line.partition(b":") for line in lines[1:])
    }
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    buffer[:] = rest[length:]
    return lines[0], headers, rest[:length]


def connect(gateway: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(gateway, timeout=10)
    return sock


def test_pipelined_requests_are_answered_in_order(gateway: tuple[str, int]) -> None:
    with connect(gateway) as sock:
        sock.sendall(
            request("GET", f"/v1/accounts/{ACC}/balance?n=1")
            + request("POST", "/v1/authorizations", b'{"n": 2}')
            + request("GET", "/v1/nothing")
        )
        buffer = bytearray()
        first = read_response(sock, buffer)
        second = read_response(sock, buffer)
        third = read_response(sock, buffer)
    assert first[0].startswith(b"HTTP/1.1 200") and json.loads(first[2])["query"] == "n=1"
    assert json.loads(second[2])["body"] == '{"n": 2}'
    assert third[0].startswith(b"HTTP/1.1 404") and json.loads(third[2])["error"]["code"] == (
        "not_found"
    )
    assert "date" in first[1] and first[1]["x-request-id"]


def test_http_10_closes_and_head_has_no_body(gateway: tuple[str, int]) -> None:
    with connect(gateway) as sock:
        sock.sendall(request("GET", f"/v1/accounts/{ACC}/balance", version="1.0"))
        status, headers, body = read_response(sock, bytearray())
        assert status.startswith(b"HTTP/1.1 200") and headers["connection"] == "close"
        assert json.loads(body)["method"] == "GET"
        assert sock.recv(1) == b""  # closed after the answer
    with connect(gateway) as sock:
        sock.sendall(request("HEAD", "/v1/authorizations/x"))
        sock.sendall(request("GET", f"/v1/accounts/{ACC}/balance"))
        buffer = bytearray()
        status, headers, _ = read_response(sock, buffer, head_only=True)
        assert status.startswith(b"HTTP/1.1 200") and int(headers["content-length"]) > 0
        # no body bytes followed the HEAD answer: the next bytes are the GET's answer
        status, _headers, body = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 200") and json.loads(body)["method"] == "GET"


def test_expect_100_continue_and_malformed_requests(gateway: tuple[str, int]) -> None:
    with connect(gateway) as sock:
        body = b'{"amount": "1.00"}'
        sock.sendall(
            (
                f"POST /v1/authorizations HTTP/1.1\r\nHost: gw\r\n"
                f"Authorization: Bearer {BOOTSTRAP_KEY}\r\nExpect: 100-continue\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        buffer = bytearray(interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :])
        sock.sendall(body)
        status, _headers, answer = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 200") and json.loads(answer)["body"] == body.decode()
    with connect(gateway) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, answer = read_response(sock, bytearray())
        assert status.startswith(b"HTTP/1.1 400")
        assert json.loads(answer)["error"]["code"] == "bad_request"
        assert headers["connection"] == "close"


def test_several_workers_share_one_port(echo: EchoFactory, control_env: dict[str, str]) -> None:
    core = echo("core-workers").url
    port = free_port()
    env = {
        **control_env,
        "CARDCORE_REDIS_URL": "",
        "GATEWAY_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
        "GATEWAY_POOL_CORE": core,
        "GATEWAY_POOL_ACCOUNTS": core,
        "GATEWAY_POOL_LEGACY": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cardcore_gateway", "--port", str(port), "--workers", "2"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the workers never became ready"
            time.sleep(0.2)
        assert len(worker_pids(process.pid)) == 2  # two workers, each accepting on the port
        answers = [
            httpx.get(f"http://127.0.0.1:{port}/v1/accounts/{ACC}/balance", headers=auth())
            for _ in range(10)
        ]
        assert {a.status_code for a in answers} == {200}
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0  # SIGTERM reaches every worker, all exit cleanly


def worker_pids(pid: int) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(c) for c in handle.read().split()]
        if len(children) >= 2:
            return children
        time.sleep(0.2)
    return children
