"""Which Pythons cardcore supports, and the evidence (issue 22).

The supported range is every Python for which every locked dependency publishes a wheel: this
test resolves the exact locked versions with `uv pip compile --only-binary :all:` for each minor
version in `requires-python` (and prints the resolution, so CI shows it), and checks that every
package of the workspace and scripts/bootstrap.sh state the same range. It needs PyPI (or uv's
cache) like the install itself. The test suite itself was also run on 3.12 and 3.13 (README).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "x86_64-manylinux_2_28"  # the images of deploy/ and the machines the README names


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists() or shutil.which(found), "no uv (run scripts/bootstrap.sh)"
    return found


def _requires_python(pyproject: Path) -> str:
    return str(tomllib.loads(pyproject.read_text())["project"]["requires-python"])


def _minor_versions(spec: str) -> list[str]:
    match = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", spec.replace(" ", ""))
    assert match, f"requires-python should be a bounded range >=3.X,<3.Y, not {spec!r}"
    low, high = int(match[1]), int(match[2])
    return [f"3.{minor}" for minor in range(low, high)]


ROOT_RANGE = _requires_python(ROOT / "pyproject.toml")
VERSIONS = _minor_versions(ROOT_RANGE)


def test_every_package_and_the_bootstrap_state_the_same_range():
    members = sorted(ROOT.glob("libs/*/pyproject.toml")) + sorted(
        ROOT.glob("services/**/pyproject.toml")
    )
    members += [ROOT / "tools" / "stack" / "pyproject.toml"]
    assert len(members) >= 8
    for pyproject in members:
        assert _requires_python(pyproject) == ROOT_RANGE, pyproject
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert lock["requires-python"].replace(" ", "") == ROOT_RANGE.replace(" ", "")
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    low, high = VERSIONS[0].split(".")[1], VERSIONS[-1].split(".")[1]
    assert f"(3, {low}) <= sys.version_info[:2] <= (3, {high})" in bootstrap
    assert ", ".join(VERSIONS[:-1]) + f" or {VERSIONS[-1]}" in bootstrap


@pytest.fixture(scope="module")
def locked_requirements(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pythons") / "locked.txt"
    subprocess.run(
        [
            *(_uv(), "export", "--frozen", "--no-hashes", "--no-emit-workspace", "--all-groups"),
            *("--quiet", "--output-file", str(out)),
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_every_locked_dependency_has_a_wheel_for(version, locked_requirements, tmp_path):
    """The exact locked versions resolve from wheels only (no sdist build) on `version`."""
    resolved = tmp_path / f"resolved-{version}.txt"
    result = subprocess.run(
        [
            *(_uv(), "pip", "compile", str(locked_requirements), "--python-version", version),
            *("--python-platform", PLATFORM, "--only-binary", ":all:", "--no-header", "--quiet"),
            *("--output-file", str(resolved)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", resolved.read_text(), re.MULTILINE)
    locked = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", locked_requirements.read_text(), re.M))
    assert len(pins) >= 90
    for name, pinned in pins:
        assert locked.get(name) == pinned, (name, pinned, locked.get(name))
    print(f"\nPython {version} ({PLATFORM}), wheels only: {len(pins)} packages resolve")
    print(" ".join(f"{name}=={pinned}" for name, pinned in pins))
