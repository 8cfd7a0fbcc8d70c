"""The Dockerfile: there is no Docker daemon on the CI machine (and no image registry), so it
is linted with hadolint and its promises are checked by reading it: a multi-stage build
that compiles the wheel, a small runtime stage running as a non-root user, the port, a
health check and the entry point."""

from __future__ import annotations

import fnmatch
import json
import shlex
import subprocess

from tests.packaging.helpers import tool
from tests.serverproc import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in _instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def test_hadolint() -> None:
    result = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_build_stage_compiles_the_extensions() -> None:
    build, runtime = _stages()
    assert build[0][1].endswith(" AS build")
    text = " ".join(args for _, args in build)
    assert "CENTRIFUGO_FAST_BUILD_EXTENSIONS=yes" in text
    assert "CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1" in text and "version" in text
    # the runtime stage takes the installed venv, not the compiler
    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert any(args.startswith("--from=build ") for args in copies)
    assert not any("gcc" in args for keyword, args in runtime if keyword == "RUN")


def test_the_runtime_stage_runs_as_a_non_root_user() -> None:
    runtime = _stages()[-1]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # nothing after USER switches back or needs root
    last_user = max(i for i, (keyword, _) in enumerate(runtime) if keyword == "USER")
    assert not [k for k, _ in runtime[last_user + 1 :] if k == "RUN"]


def test_port_health_check_and_entry_point_match_the_config() -> None:
    runtime = dict(_stages()[-1])
    port = json.loads((ROOT / "deploy" / "config.json").read_text())["http_server"]["port"]
    assert runtime["EXPOSE"] == str(port)
    assert f"127.0.0.1:{port}/health" in runtime["HEALTHCHECK"]
    assert json.loads(runtime["ENTRYPOINT"]) == ["centrifugo-fast"]
    assert json.loads(runtime["CMD"]) == ["--config", "/etc/centrifugo-fast/config.json"]


def test_every_copied_file_is_in_the_build_context() -> None:
    # .dockerignore lists what the context keeps (`*` then `!path` exceptions).
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    kept = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    assert rules[0] == "*"
    for keyword, args in _instructions():
        if keyword != "COPY" or args.startswith("--from="):
            continue
        *sources, _destination = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert any(fnmatch.fnmatch(source, pattern) for pattern in kept), source
