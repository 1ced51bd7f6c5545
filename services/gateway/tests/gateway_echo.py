"""A small upstream for gateway tests and the benchmark, run as a real uvicorn process.

It answers any path with what it received (method, path, query, headers, body) and its own name
(`ECHO_NAME`), and can be told per request to misbehave through headers the gateway passes on:
`x-echo-status` (answer that status), `x-echo-delay` (sleep that many seconds first). It counts
requests per `x-echo-tag` so a test can ask it directly (`GET /_hits/<tag>`) how many attempts
reached it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from typing import Any

NAME = os.environ.get("ECHO_NAME", "echo")
hits: Counter[str] = Counter()


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _reply(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"keep-alive, x-echo-private"),
                (b"x-echo-private", b"hop-by-hop"),
                (b"x-echo-name", NAME.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path: str = scope["path"]
    if path in ("/readyz", "/healthz"):
        await _reply(send, 200, {"status": "ready", "name": NAME})
        return
    if path.startswith("/_hits/"):
        await _reply(send, 200, {"hits": hits[path.removeprefix("/_hits/")]})
        return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    body = await _read_body(receive)
    if tag := headers.get("x-echo-tag"):
        hits[tag] += 1
    if delay := headers.get("x-echo-delay"):
        await asyncio.sleep(float(delay))
    status = int(headers.get("x-echo-status", "200"))
    await _reply(
        send,
        status,
        {
            "name": NAME,
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body_size": len(body),
            "body": body[:2048].decode("utf-8", "replace"),
        },
    )
