"""The API gateway: the only public entry of cardcore.

Authenticates API keys, limits rates, routes each request to an upstream pool (migration-aware: a
request naming a customer, account, card or PAN goes to the pool its bucket is served by), and
protects upstreams with timeouts, budgeted retries and per-instance circuit breakers.
"""
