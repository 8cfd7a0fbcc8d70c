"""Run the centrifuge-js scenario scripts of `tests/sdk/js/` and read the JSON line they print.

A script may also print marker lines (`@name`) before its JSON result: `wait_marker` lets a
test act at a precise moment of the scenario (e.g. cut the connection once a publication came).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.serverproc import require

JS_DIR = Path(__file__).resolve().parent / "js"


def node_path() -> str:
    """The node executable, once the SDK's npm packages are installed (else skip/fail)."""
    path = shutil.which("node")
    require(path is not None, "node is not installed")
    assert path is not None
    require(
        (JS_DIR / "node_modules" / "centrifuge").is_dir()
        and (JS_DIR / "node_modules" / "ws").is_dir(),
        "tests/sdk/js/node_modules is missing (run: npm ci --prefix tests/sdk/js)",
    )
    return path


def _command(node: str, script: str, args: dict[str, str]) -> list[str]:
    cmd = [node, str(JS_DIR / script)]
    for name, value in args.items():
        cmd += [f"--{name}", value]
    return cmd


def _parse(script: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    context = f"{script} exited {returncode}\nstdout: {stdout}\nstderr: {stderr}"
    assert lines, f"no output: {context}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "fatal" not in result and "timedOut" not in result, context
    assert returncode == 0, context
    return result


def run_script(
    node: str, script: str, args: dict[str, str], timeout: float = 20.0
) -> dict[str, Any]:
    """Run a scenario script to its end and return the JSON it printed."""
    done = subprocess.run(
        _command(node, script, args), capture_output=True, text=True, timeout=timeout, cwd=JS_DIR
    )
    return _parse(script, done.returncode, done.stdout, done.stderr)


def run_script_with(
    node: str,
    script: str,
    args: dict[str, str],
    action: Callable[[subprocess.Popen[str]], None],
) -> dict[str, Any]:
    """Start a scenario script, call `action(proc)` while it runs, then collect its JSON."""
    proc = subprocess.Popen(
        _command(node, script, args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=JS_DIR,
    )
    try:
        action(proc)
    except BaseException:
        proc.kill()
        stdout, stderr = proc.communicate()
        print(f"{script} output:\n{stdout}\n{stderr}")  # shown with the failure
        raise
    try:
        stdout, stderr = proc.communicate(timeout=25)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return _parse(script, proc.returncode, stdout, stderr)


def wait_marker(proc: subprocess.Popen[str], marker: str) -> None:
    """Read the script's stdout up to the line `@marker` (lib.js `mark`).

    Does not hang: every script exits at its hard timeout, which ends the output (then this
    fails, and `run_script_with` shows what the script printed).
    """
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the script ended before printing @{marker}")
        if line.strip() == f"@{marker}":
            return
