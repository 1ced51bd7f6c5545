"""Shared kernel of cardcore: what every service truly shares and none may copy.

Settings base, sharding (buckets, bucket map, shard engines), money, ids, PAN protection,
observability (JSON logs, request ids, metrics), the JSON error contract, and the `cardcore`
command host into which each installed service plugs its own commands.
"""
