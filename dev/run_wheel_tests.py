"""Install the built wheels into a fresh venv and run the tests against the installed package.

    python dev/run_wheel_tests.py dist

The venv and a copy of tests/ live in a temporary folder outside the source tree and pytest
runs there, so `import centrifugo_fast` can only find the installed wheel (the copy's
tests/packaging/test_installed.py asserts it and prints the path).

1. The compiled wheel with its `test` extra, CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1: the unit,
   server and Python-SDK tests (a representative subset: the JS SDK, Redis and browser tests
   exercise the same package code and run on the source tree in `make test`; ~2.5 min).
2. The pure py3-none-any wheel replaces it in the same venv (only the package changes): the
   unit tests and the installed-package checks, twins expected pure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPILED_SUITE = [
    "tests/unit",
    "tests/server",
    "tests/sdk/test_python_sdk.py",
    "tests/sdk/test_cent.py",
    "tests/packaging/test_installed.py",
    # the load generator's own tests exercise benchmarks/, which is not part of the package
    "--ignore=tests/server/test_load_generator.py",
]
PURE_SUITE = [
    "tests/unit",
    "tests/server/test_cli.py",
    "tests/packaging/test_installed.py",
    # the compiled twins' tests skip here by design: summarise failures and errors only
    "-rfE",
]
#: folders of tests/ the copy leaves out: npm installs, screenshots, caches
SKIPPED = ("node_modules", "artifacts", "__pycache__", ".pytest_cache")


def _one(dist: Path, pattern: str) -> Path:
    matches = sorted(dist.glob(pattern))
    if len(matches) != 1:
        raise SystemExit(f"expected one {pattern} in {dist}, found {[m.name for m in matches]}")
    return matches[0].resolve()


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=cwd, env=env)


def _pytest(python: Path, cwd: Path, suite: list[str], expect: str, require: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("CENTRIFUGO_FAST_NO_EXTENSIONS", None)
    env["CENTRIFUGO_FAST_EXPECT_TWINS"] = expect
    if require:
        env["CENTRIFUGO_FAST_REQUIRE_EXTENSIONS"] = "1"
    else:
        env.pop("CENTRIFUGO_FAST_REQUIRE_EXTENSIONS", None)
    started = time.monotonic()
    _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *suite], cwd=cwd, env=env)
    print(f"{expect} wheel: tests took {time.monotonic() - started:.0f}s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Test the built wheels in a fresh venv.")
    parser.add_argument("dist", type=Path, help="folder with both wheels")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venv")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    compiled = _one(args.dist, "centrifugo_fast-*-cp3*.whl")
    pure = _one(args.dist, "centrifugo_fast-*-py3-none-any.whl")
    sdist = _one(args.dist, "centrifugo_fast-*.tar.gz")
    work = Path(tempfile.mkdtemp(prefix="cf-fast-wheel-"))
    try:
        venv = work / "venv"
        # `-m venv` from inside a venv builds on the base interpreter: nothing of the
        # development venv (its editable install of the source tree) leaks in.
        _run([args.python, "-m", "venv", str(venv)])
        python = venv / "bin" / "python"
        _run([str(python), "-m", "pip", "install", "-q", f"{compiled}[test]"])
        src = work / "src"
        shutil.copytree(ROOT / "tests", src / "tests", ignore=shutil.ignore_patterns(*SKIPPED))
        # Some unit tests run centrifuge-js' code under Node (`make test-sdk-deps`).
        node_modules = ROOT / "tests" / "sdk" / "js" / "node_modules"
        if node_modules.is_dir():
            (src / "tests" / "sdk" / "js" / "node_modules").symlink_to(node_modules)
        # pytest's configuration, and the files two tests compare with the package: from the
        # sdist the wheels were built from, so they match the package even while the tree
        # changes.
        with tarfile.open(sdist) as archive:
            for name in ("pyproject.toml", "README.md"):
                member = archive.extractfile(f"{sdist.name.removesuffix('.tar.gz')}/{name}")
                assert member is not None
                (src / name).write_bytes(member.read())
        _pytest(python, src, COMPILED_SUITE, "compiled", require=True)
        _run(
            [str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(pure)]
        )
        _pytest(python, src, PURE_SUITE, "pure", require=False)
    except subprocess.CalledProcessError as exc:
        print(f"run_wheel_tests: {' '.join(map(str, exc.cmd[:4]))} ... failed", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
