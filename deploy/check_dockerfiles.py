#!/usr/bin/env python3
"""Keep the cardcore Dockerfiles in step with the workspace (run by deploy/check-config).

Two things drift silently when people edit one Dockerfile or add a dependency:
- every workspace package an image installs (its package and, transitively, the workspace
  packages it depends on in uv.lock) must have its pyproject.toml and src/ copied into the
  builder, or `uv sync --frozen` fails only at build time;
- the shared stages (manifests, the builder up to the kernel-dependency layer, the runtime base)
  must stay byte-identical across the Dockerfiles: the layer cache is shared only then, and the
  images build in minutes instead of once each from scratch.

Standard library only (tomllib): runs on the CI host without the project's virtualenv.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = [
    "services/gateway/Dockerfile",
    "services/card-core/accounts/Dockerfile",
    "services/card-core/ledger/Dockerfile",
    "services/migration/Dockerfile",
    "services/legacy-ccs/Dockerfile",
    "services/batch/Dockerfile",
    "deploy/docker/ops.Dockerfile",
    "deploy/docker/loadtest.Dockerfile",
]
SHARED_BUILDER_END = "--no-install-workspace --package cardcore-kernel\n"
RUNTIME_START = "FROM ${BASE_IMAGE} AS runtime\n"
RUNTIME_SHARED_END = "WORKDIR /var/lib/cardcore\n"


def workspace_members(lock: dict) -> dict[str, tuple[str, list[str]]]:
    """name -> (folder, names of its dependencies) for every editable (workspace) package."""
    members = {}
    for package in lock["package"]:
        folder = package.get("source", {}).get("editable")
        if folder is not None:
            deps = [dep["name"] for dep in package.get("dependencies", [])]
            members[package["name"]] = (folder, deps)
    return members


def needed_folders(packages: list[str], members: dict[str, tuple[str, list[str]]]) -> set[str]:
    folders: set[str] = set()
    pending = list(packages)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in members:
            continue
        seen.add(name)
        folder, deps = members[name]
        folders.add(folder)
        pending.extend(deps)
    return folders


def shared_parts(text: str) -> tuple[str, str]:
    """The builder prefix (after the header comment) and the runtime base of a Dockerfile."""
    start = text.index("ARG BASE_IMAGE=")
    builder_end = text.index(SHARED_BUILDER_END) + len(SHARED_BUILDER_END)
    runtime_start = text.index(RUNTIME_START)
    runtime_end = text.index(RUNTIME_SHARED_END, runtime_start) + len(RUNTIME_SHARED_END)
    return text[start:builder_end], text[runtime_start:runtime_end]


def main() -> int:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    members = workspace_members(lock)
    problems: list[str] = []
    reference: tuple[str, str] | None = None
    for relative in DOCKERFILES:
        text = (ROOT / relative).read_text()
        logical_lines = text.replace("\\\n", " ").splitlines()
        final_sync = [
            line
            for line in logical_lines
            if line.startswith("RUN uv sync") and "--no-install-workspace" not in line
        ]
        packages = re.findall(r"--package\s+(\S+)", " ".join(final_sync))
        if not packages:
            problems.append(f"{relative}: no final `uv sync ... --package` step")
        copied = set(re.findall(r"^COPY (\S+) \1$", text, flags=re.MULTILINE))
        for folder in sorted(needed_folders(packages, members)):
            for part in ("pyproject.toml", "src"):
                if f"{folder}/{part}" not in copied:
                    problems.append(
                        f"{relative}: installs {folder} but does not COPY {folder}/{part}"
                    )
        try:
            parts = shared_parts(text)
        except ValueError:
            problems.append(f"{relative}: shared stages not found (manifests/builder/runtime)")
            continue
        if reference is None:
            reference = parts
        elif parts != reference:
            which = "builder" if parts[0] != reference[0] else "runtime"
            problems.append(
                f"{relative}: the shared {which} stage differs from {DOCKERFILES[0]} "
                "(keep them identical: the layer cache is shared across images)"
            )
    for problem in problems:
        print(f"check_dockerfiles: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dockerfiles: {len(DOCKERFILES)} Dockerfiles consistent with uv.lock")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
