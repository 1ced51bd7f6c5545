"""The dry-run report as a page a person can read (jinja2, autoescaped)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from cardcore_migration.domain.codes import RULE_BY_CODE

_env = Environment(
    loader=PackageLoader("cardcore_migration", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
)


def render_html(report: dict[str, Any]) -> str:
    return _env.get_template("report.html.j2").render(report=report, rules=RULE_BY_CODE)
