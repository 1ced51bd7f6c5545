"""Stage 2, authenticate: the API key -> client (cached, see keys.Authenticator) and its scopes.

Missing or unknown key -> 401 with `WWW-Authenticate: Bearer`; a key without any of the route's
scopes -> 403. The key itself stays on the exchange and never travels upstream.
"""

from __future__ import annotations

from cardcore_gateway.exchange import Exchange, Refusal
from cardcore_gateway.keys import Authenticator

BEARER = [(b"www-authenticate", b"Bearer")]


class Authenticate:
    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, exchange: Exchange) -> None:
        route = exchange.route
        assert route is not None
        if not exchange.key:
            raise Refusal(
                401,
                "unauthenticated",
                "missing API key (Authorization: Bearer, or X-API-Key)",
                BEARER,
            )
        client = await self._authenticator.authenticate(exchange.key)
        if client is None:
            raise Refusal(401, "unauthenticated", "invalid API key", BEARER)
        exchange.client = client
        if not client.allowed(route.scopes):
            raise Refusal(
                403, "forbidden", f"this key lacks a scope for this route: {sorted(route.scopes)}"
            )
