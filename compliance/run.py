"""Run the Autobahn cases (kosoku) against our echo server, once per frame-parser twin.

Fails when any case ends FAILED or NON-STRICT (or UNIMPLEMENTED) outside EXCLUDED. The whole
suite runs, including the permessage-deflate cases 12.* and 13.* (the echo server negotiates
compression as the server does with `websocket.compression` on).
Reports land in --outdir/<twin>/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Case patterns not run, each with its reason. Keep this list short.
SKIPPED_PATTERNS: dict[str, str] = {}

#: Individual cases allowed to end other than OK/INFORMATIONAL, each with its reason.
EXCLUDED: dict[str, str] = {}

ACCEPTED = {"OK", "INFORMATIONAL"}

TWINS = {
    "compiled": {"CENTRIFUGO_FAST_REQUIRE_EXTENSIONS": "1"},
    "pure": {"CENTRIFUGO_FAST_NO_EXTENSIONS": "1"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"echo server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("echo server did not start")


def _kosoku() -> str:
    local = Path(sys.executable).parent / "kosoku"
    found = str(local) if local.exists() else shutil.which("kosoku")
    if found is None:
        raise SystemExit("kosoku is not installed (pip install kosoku)")
    return found


def run_twin(name: str, env_extra: dict[str, str], outdir: Path, parallel: int) -> list[str]:
    """Run the suite against one twin; return the problems found."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRIFUGO_FAST_")}
    env.update(env_extra)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "echo_server.py"), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    report_dir = outdir / name
    shutil.rmtree(report_dir, ignore_errors=True)
    try:
        _wait_port(port, server)
        cmd = [_kosoku(), f"127.0.0.1:{port}", "-p", str(parallel), "-o", str(report_dir)]
        for pattern in SKIPPED_PATTERNS:
            cmd += ["-x", pattern]
        started = time.monotonic()
        # About 5 min per twin on a 2-vCPU VM, most of it the 216 compression cases (12.*, 13.*).
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        try:
            out, _ = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
    banner = out.decode(errors="replace").splitlines()[:1]
    index = report_dir / "index.json"
    if not index.exists():
        return [f"{name}: kosoku wrote no report (exit {result.returncode}): {result.stderr}"]
    cases: dict[str, dict[str, object]] = next(iter(json.loads(index.read_text()).values()))
    behaviours = Counter(str(case["behavior"]) for case in cases.values())
    closes = Counter(str(case["behaviorClose"]) for case in cases.values())
    print(f"{name}: {banner[0] if banner else ''}")
    print(f"  {len(cases)} cases in {elapsed:.1f}s; behaviour {dict(sorted(behaviours.items()))}")
    print(f"  close behaviour {dict(sorted(closes.items()))}")
    problems = []
    for case_id, case in sorted(cases.items()):
        for field in ("behavior", "behaviorClose"):
            verdict = str(case[field])
            if verdict not in ACCEPTED and case_id not in EXCLUDED:
                problems.append(f"{name}: case {case_id} {field}={verdict} ({case['reportfile']})")
    return problems


def main() -> int:
    """Run both twins; return 1 on any unexpected verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outdir", type=Path, default=HERE / "reports")
    parser.add_argument("--twin", choices=sorted(TWINS), action="append")
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    for pattern, reason in SKIPPED_PATTERNS.items():
        print(f"not run: {pattern}: {reason}")
    problems: list[str] = []
    for name in args.twin or list(TWINS):
        problems += run_twin(name, TWINS[name], args.outdir, args.parallel)
    for problem in problems:
        print(problem)
    print("compliance:", "FAILED" if problems else "passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
