"""The stages of the proxy path, in order: match, authenticate, limit, route, hold, forward, relay.

Each is a small object with one `async __call__(exchange)` (relay: `relay(exchange, response)`)
that reads and fills the `Exchange` or raises `Refusal`; each is tested alone in
tests/test_stages.py and together, against real processes, in the other gateway tests.
"""
