"""wheels.yml, the release workflow: valid for GitHub Actions, and cibuildwheel builds the
promised wheels on each of its machines (Linux x86_64/aarch64 manylinux + musllinux, macOS
x86_64/arm64, Windows AMD64)."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from typing import Any

import yaml

from tests.packaging.helpers import tool
from tests.serverproc import ROOT

WORKFLOW = ROOT / "wheels.yml"
PYTHONS = ["cp311", "cp312", "cp313", "cp314"]
PLATFORMS = {"ubuntu": "linux", "macos": "macos", "windows": "windows"}


def _workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def _identifiers(platform: str, env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [tool("cibuildwheel"), "--print-build-identifiers", "--platform", platform, str(ROOT)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def _fill(value: str, entry: dict[str, Any]) -> str:
    """`${{ matrix.NAME }}` expressions replaced by the matrix entry's values."""
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: str(entry[m[1]]), value)


def test_actionlint() -> None:
    # actionlint checks the run: blocks with shellcheck when it is on PATH: require it.
    tool("shellcheck")
    result = subprocess.run([tool("actionlint"), str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_schema() -> None:
    result = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_machine_builds_its_wheels() -> None:
    job = _workflow()["jobs"]["binary"]
    step = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pypa/cibuildwheel"))
    built: set[str] = set()
    for entry in job["strategy"]["matrix"]["include"]:
        platform = next(p for prefix, p in PLATFORMS.items() if entry["os"].startswith(prefix))
        # the step's env with this matrix entry's values filled in
        env = {name: _fill(value, entry) for name, value in step.get("env", {}).items()}
        identifiers = _identifiers(platform, env)
        assert identifiers, entry
        built.update(identifiers)
    expected = {
        f"{py}-{libc}_{arch}"
        for py in PYTHONS
        for libc in ("manylinux", "musllinux")
        for arch in ("x86_64", "aarch64")
    }
    expected |= {f"{py}-macosx_{arch}" for py in PYTHONS for arch in ("x86_64", "arm64")}
    expected |= {f"{py}-win_amd64" for py in PYTHONS}
    assert built == expected


def test_wheels_are_compiled_and_tested_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    # a compile failure fails the build; a fallback to the pure twins fails the tests
    assert config["environment"]["CENTRIFUGO_FAST_BUILD_EXTENSIONS"] == "yes"
    assert config["test-environment"]["CENTRIFUGO_FAST_REQUIRE_EXTENSIONS"] == "1"
    assert "tests" in config["test-sources"] and config["test-extras"] == ["test"]
    assert "tests/packaging/test_installed.py" in config["test-command"]
    assert "tests/packaging/test_installed.py" in config["windows"]["test-command"]
    # the fallback wheel and the sdist are built too, the pure wheel without extensions
    pure = _workflow()["jobs"]["pure"]
    build_step = next(s for s in pure["steps"] if "build" in str(s.get("name", "")).lower())
    assert build_step["env"]["CENTRIFUGO_FAST_BUILD_EXTENSIONS"] == "no"
    assert "--sdist" in build_step["run"] and "--wheel" in build_step["run"]
