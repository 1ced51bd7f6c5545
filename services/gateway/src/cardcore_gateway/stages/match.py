"""Stage 1, match: the route rule for the method and path, or 404 / 405 (error JSON).

`/internal/...` is never routed whatever the route file says (config.GatewayConfig.match).
Matching walks the ordered rules (a dozen, exact / prefix / compiled regex); the first whose path
and method match wins.
"""

from __future__ import annotations

from cardcore_gateway.config import GatewayConfig
from cardcore_gateway.exchange import Exchange, Refusal


class Match:
    def __init__(self, config: GatewayConfig) -> None:
        self._config = config

    async def __call__(self, exchange: Exchange) -> None:
        match = self._config.match(exchange.method, exchange.path)
        if match.route is None:
            if match.method_not_allowed:
                raise Refusal(405, "method_not_allowed", f"{exchange.method} not allowed here")
            raise Refusal(404, "not_found", f"no route for {exchange.path}")
        exchange.route = match.route
