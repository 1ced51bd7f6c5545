"""Stage 7, relay: the upstream's answer back to the client, streamed, with the gateway's headers.

Hop-by-hop headers (and any the upstream names in `Connection`) are dropped, and so are `Date`
and `Server` (the front server sets its own) and the upstream's `X-Request-ID` (the gateway's is
the one that counts); the request id and rate-limit headers are added. The body is streamed chunk
by chunk with flow control; a response complete in its first chunk goes out in one message.
"""

from __future__ import annotations

import structlog

from cardcore_gateway.exchange import Exchange
from cardcore_gateway.stages.forward import HOP_BY_HOP
from cardcore_gateway.upstream_http import UpstreamError, UpstreamResponse

DROP_RESPONSE = HOP_BY_HOP | {b"x-request-id", b"date", b"server"}

log = structlog.get_logger("cardcore.gateway.access")


async def relay(exchange: Exchange, response: UpstreamResponse) -> None:
    raw = response.headers  # names already lower-cased
    headers = [(name, value) for name, value in raw if name not in DROP_RESPONSE]
    for name, value in raw:
        if name == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            headers = [(n, v) for n, v in headers if n not in tokens]
    headers.append((b"x-request-id", exchange.request_id.encode("latin-1")))
    headers.extend(exchange.limit_headers)
    exchange.status = response.status_code
    send = exchange.send
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    try:
        whole = response.whole_body()
        if whole is not None:
            await send({"type": "http.response.body", "body": whole})
            return
        async for chunk in response.aiter_raw():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except UpstreamError as exc:
        log.warning("upstream_stream_broken", error=str(exc), upstream=exchange.upstream)
        raise
    finally:
        await response.aclose()
