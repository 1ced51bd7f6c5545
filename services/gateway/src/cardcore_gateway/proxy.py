"""The proxy path, as plain ASGI: the stages in order around one `Exchange`, then observation.

    match -> authenticate -> limit -> route -> hold -> forward -> relay      (stages/*.py)

Kept free of framework routing on purpose: this is the hot path, and every request pays for each
layer. A stage either fills the exchange or raises `Refusal`, answered here as error JSON. Request
and response bodies are streamed; a body is read into memory only when it must be inspected for
routing or replayed on a retry, and never beyond the route's `max_body`. The access log line and
the metrics are recorded after the answer is sent (observe.py), off the request's critical path.
"""

from __future__ import annotations

from cardcore_gateway.exchange import ClientGone, Exchange, Receive, Refusal, Scope, Send
from cardcore_gateway.observe import Observer
from cardcore_gateway.stages.authenticate import Authenticate
from cardcore_gateway.stages.forward import Forward
from cardcore_gateway.stages.hold import Hold
from cardcore_gateway.stages.limit import Limit
from cardcore_gateway.stages.match import Match
from cardcore_gateway.stages.relay import relay
from cardcore_gateway.stages.route import RouteStage, bucket_in_path

__all__ = ["Proxy", "bucket_in_path"]


class Proxy:
    def __init__(
        self,
        match: Match,
        authenticate: Authenticate,
        limit: Limit,
        route: RouteStage,
        hold: Hold,
        forward: Forward,
        observer: Observer,
    ) -> None:
        self.match = match
        self.authenticate = authenticate
        self.limit = limit
        self.route = route
        self.hold = hold
        self.forward = forward
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, receive, send)
        try:
            await self.match(exchange)
            await self.authenticate(exchange)
            await self.limit(exchange)
            await self.route(exchange)
            await self.hold(exchange)
            counted = self.hold.begin(exchange)  # no await since the hold: nothing slips by
            try:
                response = await self.forward(exchange)
                await relay(exchange, response)
            finally:
                if counted is not None:
                    self.hold.end(counted)
        except Refusal as refusal:
            await exchange.answer_error(refusal)
        except ClientGone:
            exchange.status = 499
        finally:
            self.observer.record(exchange)
