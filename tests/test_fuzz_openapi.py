"""Fuzzing each service's HTTP API from its own OpenAPI document (issue 16, first slice).

schemathesis generates requests from the OpenAPI of a service app (in-process, on a real stack:
SQLite, or PostgreSQL with `-m postgres` params) — data that fits the schema and data that does
not — and every response must keep the API's promises:
- never a 5xx;
- every 4xx carries the error JSON `{"error": {"code", "message", "field"}}`;
- no response contradicts the OpenAPI: its status code is declared for the operation, its
  content type and its body match what is declared for that status.
Findings are collected (one per operation and kind) and reported together, not just the first.

One harness for every service: a `FuzzTarget` names how to build the app (accounts, ledger,
legacy-ccs; the gateway admin API is still to be added). CI runs `FUZZ_EXAMPLES` examples with a
fixed seed (fast); the long run is `make fuzz` (CARDCORE_FUZZ_EXAMPLES=5000, any seed via
CARDCORE_FUZZ_SEED).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cardcore_kernel.settings import get_settings
from cardcore_kernel.testing import StackEnv, free_port

LONG_RUN = "CARDCORE_FUZZ_EXAMPLES" in os.environ
FUZZ_EXAMPLES = int(os.environ.get("CARDCORE_FUZZ_EXAMPLES", "250"))
FUZZ_SEED = int(os.environ.get("CARDCORE_FUZZ_SEED", "20261203"))
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _accounts_app() -> FastAPI:
    from cardcore_accounts.api import create_app

    return create_app()


def _ledger_app() -> FastAPI:
    from cardcore_ledger.api import create_app

    return create_app()


def _legacy_app() -> FastAPI:
    from cardcore_legacy.api.app import create_app
    from cardcore_legacy.ccs.store import init_schema

    init_schema(get_settings().legacy_url)  # the CCS tables the front serves (empty)
    return create_app()


@dataclass(frozen=True)
class FuzzTarget:
    name: str
    app: Callable[[], FastAPI]


TARGETS = [
    pytest.param(FuzzTarget("accounts", _accounts_app), id="accounts"),
    pytest.param(FuzzTarget("ledger", _ledger_app), id="ledger"),
    pytest.param(FuzzTarget("legacy-ccs", _legacy_app), id="legacy-ccs"),
]


def _error_json_problem(status: int, body: Any) -> str | None:
    if not 400 <= status < 500:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if (
        not isinstance(error, dict)
        or set(error) != {"code", "message", "field"}
        or not isinstance(error["code"], str)
        or not isinstance(error["message"], str)
        or not (error["field"] is None or isinstance(error["field"], str))
    ):
        return f"{status} without the error JSON: {str(body)[:200]}"
    return None


def document_findings(app: FastAPI) -> dict[tuple[str, str], str]:
    """What the OpenAPI itself gets wrong: a 4xx not declared as the error JSON."""
    findings: dict[tuple[str, str], str] = {}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            responses = operation.get("responses", {})
            if "422" not in responses:
                findings[(label, "document")] = "no 422 declared"
            for status, response in responses.items():
                if not status.startswith("4"):
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema != {"$ref": "#/components/schemas/ErrorBody"}:
                    findings.setdefault(
                        (label, "document"), f"{status} declared as {schema}, not the error JSON"
                    )
    return findings


def fuzz(app: FastAPI, examples: int, fuzz_seed: int) -> dict[tuple[str, str], str]:
    """Run `examples` generated requests against `app`; findings by (operation, kind)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    findings = document_findings(app)

    @seed(fuzz_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=cases)
    def one_request(case: Any) -> None:
        label = case.operation.label
        response = case.call()
        request = f" (request: {case.method} {case.formatted_path} {str(case.body)[:120]})"
        if response.status_code >= 500:
            findings.setdefault(
                (label, "5xx"), f"{response.status_code}: {response.text[:300]}{request}"
            )
            return
        try:
            body = response.json()
        except ValueError:
            body = response.text
        problem = _error_json_problem(response.status_code, body)
        if problem:
            findings.setdefault((label, "error JSON"), problem + request)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                title = getattr(failure, "title", type(failure).__name__)
                text = " ".join(str(failure).split())
                findings.setdefault(
                    (label, f"contradicts OpenAPI: {title} ({response.status_code})"),
                    text[:300] + request,
                )

    one_request()
    return findings


# CI fuzzes the embedded default; the long run adds PostgreSQL
FUZZ_BACKENDS = ["sqlite"] + (
    [pytest.param("postgres", marks=pytest.mark.postgres)] if LONG_RUN else []
)


@pytest.mark.parametrize("backend", FUZZ_BACKENDS)
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_openapi(target: FuzzTarget, stack: StackEnv, monkeypatch: pytest.MonkeyPatch):
    # nothing listens there: accounts keeps its ledger events in the outbox, as when it is down
    monkeypatch.setenv("CARDCORE_LEDGER_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    findings = fuzz(target.app(), FUZZ_EXAMPLES, FUZZ_SEED)
    report = "\n".join(f"{op} [{kind}] {detail}" for (op, kind), detail in sorted(findings.items()))
    print(f"\n{target.name}: {FUZZ_EXAMPLES} examples, seed {FUZZ_SEED}, {len(findings)} findings")
    print(report)
    assert not findings, report
