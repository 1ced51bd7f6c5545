"""Batch calls the ledger's published modules; it never reaches into the ledger's internals.

The ledger owns its tables: batch orchestrates end of day (job repository, partitions, Celery)
and calls `cardcore_ledger.eod`, which holds the only end-of-day code that writes them. This test
walks every module of the batch service (source and tests) and fails on an import of another
service's `tables`, `domain` or `repository`, or of a private name (leading underscore).
"""

from __future__ import annotations

import ast
from pathlib import Path

BATCH = Path(__file__).resolve().parents[1]
OWN = {"cardcore_batch"}
PRIVATE_MODULES = {"tables", "domain", "repository"}


def forbidden_imports(source: str, own: set[str] = OWN) -> list[str]:
    """Imports of another cardcore package's internals in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in targets:
            parts = module.split(".")
            if not parts[0].startswith("cardcore_") or parts[0] in own:
                continue
            if parts[0] == "cardcore_kernel":  # the shared library: only its private names
                private = [p for p in [*parts[1:], name or ""] if p.startswith("_")]
            else:
                private = [
                    p for p in [*parts[1:], name or ""] if p.startswith("_") or p in PRIVATE_MODULES
                ]
            if private:
                found.append(f"{module}{'.' + name if name else ''} (line {node.lineno})")
    return found


def test_the_checker_catches_reaching_into_the_ledger() -> None:
    bad = (
        "from cardcore_ledger.tables import ledger_accounts\n"
        "import cardcore_ledger.domain\n"
        "from cardcore_ledger import tables\n"
        "from cardcore_ledger.service import _components\n"
        "from cardcore_kernel.db import _private\n"
    )
    assert len(forbidden_imports(bad)) == 5
    good = (
        "from cardcore_ledger import eod\nfrom cardcore_ledger.eod import rules\n"
        "from cardcore_kernel.db import ShardSet\nfrom cardcore_batch.tables import batch_jobs\n"
    )
    assert forbidden_imports(good) == []


def test_no_batch_module_imports_another_services_internals() -> None:
    modules = sorted(p for p in BATCH.rglob("*.py") if ".venv" not in p.parts)
    assert len(modules) > 10  # the walk sees the service
    offences = {
        str(path.relative_to(BATCH)): bad
        for path in modules
        if (bad := forbidden_imports(path.read_text()))
    }
    assert offences == {}
