"""The route table: ordered rules (path + methods) -> upstream pool, read from JSON or TOML.

The file has `[pools.<name>] instances = [...]`, optional `[defaults]` (timeout, retries,
max_body, scopes) and an ordered `[[routes]]` list; the first rule that matches path and method
wins. Each rule names exactly one of `path` (exact), `prefix` (whole path segments) or `regex`.
`bucket_pools` lists the pools the bucket -> pool table may send this route's traffic to (the
migration switch); any other bucket assignment leaves the route on its default `pool`.
`GATEWAY_POOL_<NAME>=url1,url2` replaces a pool's instances (or declares a new pool).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

KNOWN_SCOPES = frozenset({"payments", "accounts", "ops"})
ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NEVER_ROUTED_PREFIX = "/internal"
POOL_ENV_PREFIX = "GATEWAY_POOL_"


class ConfigError(ValueError):
    """The route file is not valid; the message names the offending entry."""


@dataclass(frozen=True)
class Route:
    name: str
    pool: str
    methods: frozenset[str]
    scopes: frozenset[str]
    timeout: float
    retries: int
    max_body: int
    inspect_body: bool = False
    bucket_pools: frozenset[str] = frozenset()
    rate: float | None = None
    burst: int | None = None
    exact: str | None = None
    prefix: str | None = None
    regex: re.Pattern[str] | None = None

    def matches_path(self, path: str) -> bool:
        if self.exact is not None:
            return path == self.exact
        if self.prefix is not None:
            return path == self.prefix or path.startswith(self.prefix + "/") or not self.prefix
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None


@dataclass(frozen=True)
class RouteMatch:
    route: Route | None
    method_not_allowed: bool = False


@dataclass(frozen=True)
class GatewayConfig:
    routes: tuple[Route, ...]
    pools: Mapping[str, tuple[str, ...]]

    def match(self, method: str, path: str) -> RouteMatch:
        if path == NEVER_ROUTED_PREFIX or path.startswith(NEVER_ROUTED_PREFIX + "/"):
            return RouteMatch(None)
        path_matched = False
        for route in self.routes:
            if route.matches_path(path):
                if method in route.methods:
                    return RouteMatch(route)
                path_matched = True
        return RouteMatch(None, method_not_allowed=path_matched)


def default_routes_text() -> str:
    return files("cardcore_gateway").joinpath("routes.toml").read_text(encoding="utf-8")


def load_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """The route table from `path` (or the packaged default), with env pool overrides applied."""
    if path is None:
        raw = tomllib.loads(default_routes_text())
        source = "default routes.toml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read routes file {path}: {exc}") from None
        source = str(path)
        try:
            raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return parse_config(raw, pool_overrides(os.environ if environ is None else environ), source)


def pool_overrides(environ: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    overrides = {}
    for key, value in environ.items():
        if key.startswith(POOL_ENV_PREFIX) and len(key) > len(POOL_ENV_PREFIX):
            name = key[len(POOL_ENV_PREFIX) :].lower()
            overrides[name] = tuple(
                _check_url(u.strip(), key) for u in value.split(",") if u.strip()
            )
    return overrides


def _check_url(url: str, where: str) -> str:
    if not re.fullmatch(r"https?://[^/\s]+", url.rstrip("/")):
        raise ConfigError(f"{where}: not an upstream base URL (scheme://host:port): {url!r}")
    return url.rstrip("/")


def parse_config(
    raw: Mapping[str, Any], overrides: Mapping[str, tuple[str, ...]], source: str = "routes"
) -> GatewayConfig:
    pools: dict[str, tuple[str, ...]] = {}
    for name, spec in (raw.get("pools") or {}).items():
        instances = spec.get("instances", []) if isinstance(spec, Mapping) else spec
        if not isinstance(instances, list):
            raise ConfigError(f"{source}: pools.{name}.instances must be a list of URLs")
        pools[name.lower()] = tuple(_check_url(str(u), f"pools.{name}") for u in instances)
    pools.update(overrides)
    defaults = raw.get("defaults") or {}
    routes = []
    for index, spec in enumerate(raw.get("routes") or []):
        routes.append(_parse_route(spec, defaults, pools, f"{source}: routes[{index}]"))
    if not routes:
        raise ConfigError(f"{source}: no routes")
    names = [r.name for r in routes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: route names must be unique")
    return GatewayConfig(routes=tuple(routes), pools=pools)


def _parse_route(
    spec: Mapping[str, Any], defaults: Mapping[str, Any], pools: Mapping[str, Any], where: str
) -> Route:
    def get(key: str, fallback: Any) -> Any:
        return spec.get(key, defaults.get(key, fallback))

    matchers = [k for k in ("path", "prefix", "regex") if k in spec]
    if len(matchers) != 1:
        raise ConfigError(f"{where}: give exactly one of path, prefix, regex")
    pool = str(spec.get("pool", "")).lower()
    if pool not in pools:
        raise ConfigError(f"{where}: unknown pool {pool!r}")
    methods = frozenset(m.upper() for m in get("methods", sorted(ALL_METHODS)))
    if not methods <= ALL_METHODS:
        raise ConfigError(f"{where}: unknown method in {sorted(methods)}")
    scopes = frozenset(get("scopes", []))
    if not scopes or not scopes <= KNOWN_SCOPES:
        raise ConfigError(f"{where}: scopes must be a non-empty subset of {sorted(KNOWN_SCOPES)}")
    bucket_pools = frozenset(p.lower() for p in get("bucket_pools", []))
    if not bucket_pools <= set(pools):
        raise ConfigError(f"{where}: unknown pool in bucket_pools {sorted(bucket_pools)}")
    regex = None
    if "regex" in spec:
        try:
            regex = re.compile(spec["regex"])
        except re.error as exc:
            raise ConfigError(f"{where}: bad regex: {exc}") from None
    rate = spec.get("rate")
    burst = spec.get("burst")
    if (rate is None) != (burst is None):
        raise ConfigError(f"{where}: give both rate and burst for a per-route limit")
    route = Route(
        name=str(spec.get("name") or spec.get("path") or spec.get("prefix") or spec["regex"]),
        pool=pool,
        methods=methods,
        scopes=scopes,
        timeout=float(get("timeout", 10.0)),
        retries=int(get("retries", 1)),
        max_body=int(get("max_body", 1_048_576)),
        inspect_body=bool(get("inspect_body", False)),
        bucket_pools=bucket_pools,
        rate=None if rate is None else float(rate),
        burst=None if burst is None else int(burst),
        exact=spec.get("path"),
        prefix=str(spec["prefix"]).rstrip("/") if "prefix" in spec else None,
        regex=regex,
    )
    if route.timeout <= 0 or route.retries < 0 or route.max_body < 0:
        raise ConfigError(f"{where}: timeout must be > 0, retries and max_body >= 0")
    return route
