"""Check what `make wheel` built: the sdist, the compiled wheel and the pure fallback wheel.

    python dev/check_dist.py dist

A wheel that silently lacks a compiled twin or a data file still imports; it only breaks
(or slows down) in production. So this compares the archives with the source tree:
  * every compiled twin (each `_<name>_c.pxd` in the package) is an extension module in the
    binary wheel and absent from the pure one, which is tagged py3-none-any;
  * every package-data file of the source tree (Lua scripts, admin pages, stubs, py.typed)
    is in both wheels, and each wheel has the console script;
  * the sdist holds what a build from it needs (setup.py, the .pyx/.pxd/pure-mode sources)
    and no generated C or built extensions.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "centrifugo_fast"
EXTENSION_SUFFIXES = (".so", ".pyd")


def compiled_twins() -> list[str]:
    """Dotted names of the compiled twins, e.g. centrifugo_fast.core._fanout_c."""
    names = []
    for pxd in sorted(PACKAGE.rglob("_*_c.pxd")):
        rel = pxd.relative_to(ROOT).with_suffix("")
        names.append(".".join(rel.parts))
    return names


def package_data() -> list[str]:
    """Source files matched by pyproject's package-data globs, as archive paths."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns: list[str] = config["package-data"]["centrifugo_fast"]
    excluded: list[str] = config.get("exclude-package-data", {}).get("*", [])
    found = []
    for path in PACKAGE.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in excluded):
            continue
        if any(_matches(rel, pattern) for pattern in patterns):
            found.append(f"centrifugo_fast/{rel}")
    return sorted(found)


def _matches(rel: str, pattern: str) -> bool:
    # setuptools globs: "**/" spans directories (zero or more); fnmatch's "*" already does.
    if pattern.startswith("**/"):
        return fnmatch.fnmatch(rel, pattern[3:]) or fnmatch.fnmatch(rel, pattern)
    return fnmatch.fnmatch(rel, pattern)


def _one(dist: Path, pattern: str) -> Path:
    matches = sorted(dist.glob(pattern))
    if len(matches) != 1:
        raise SystemExit(f"expected one {pattern} in {dist}, found {[m.name for m in matches]}")
    return matches[0]


def check_wheel(path: Path, *, compiled: bool) -> list[str]:
    """Problems found in one wheel (empty: fine)."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        wheel_meta = archive.read(next(n for n in names if n.endswith(".dist-info/WHEEL")))
        if b"centrifugo-fast = centrifugo_fast.cli:main" not in archive.read(entry_points):
            problems.append("console script centrifugo-fast missing")
    extensions = {n for n in names if n.endswith(EXTENSION_SUFFIXES)}
    for twin in compiled_twins():
        prefix = twin.replace(".", "/") + "."
        present = any(n.startswith(prefix) for n in extensions)
        if compiled and not present:
            problems.append(f"compiled twin {twin} missing")
        if not compiled and present:
            problems.append(f"pure wheel contains {twin}")
    unexpected = {n for n in extensions if not any(n.startswith(t) for t in _twin_paths())}
    if unexpected:
        problems.append(f"unexpected extension modules {sorted(unexpected)}")
    for data in package_data():
        if data not in names:
            problems.append(f"package data {data} missing")
    is_pure_tag = b"Root-Is-Purelib: true" in wheel_meta and path.name.endswith("-none-any.whl")
    if compiled == is_pure_tag:
        problems.append(f"wrong tag for a {'compiled' if compiled else 'pure'} wheel: {path.name}")
    return problems


def _twin_paths() -> list[str]:
    return [twin.replace(".", "/") + "." for twin in compiled_twins()]


def check_sdist(path: Path) -> list[str]:
    """Problems found in the sdist (empty: fine)."""
    with tarfile.open(path) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in archive.getnames()}
    problems = []
    needed = ["setup.py", "pyproject.toml", "README.md", "MANIFEST.in"]
    needed += [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("_*_c.pxd")]
    needed += [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("_*_c.pyx")]
    needed += [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("_*_py.py")]
    needed += package_data()
    problems += [f"{name} missing" for name in needed if name not in names]
    generated = [n for n in names if n.endswith((".c", *EXTENSION_SUFFIXES))]
    problems += [f"generated file {name} shipped" for name in generated]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dist", type=Path, help="folder with the sdist and both wheels")
    args = parser.parse_args()
    dist: Path = args.dist
    twins = compiled_twins()
    if not twins:
        raise SystemExit("no compiled twins found in the source tree")
    sdist = _one(dist, "centrifugo_fast-*.tar.gz")
    compiled = _one(dist, "centrifugo_fast-*-cp3*.whl")
    pure = _one(dist, "centrifugo_fast-*-py3-none-any.whl")
    report = {
        sdist: check_sdist(sdist),
        compiled: check_wheel(compiled, compiled=True),
        pure: check_wheel(pure, compiled=False),
    }
    failed = False
    for path, problems in report.items():
        size = path.stat().st_size / 1024
        status = "ok" if not problems else "FAILED"
        print(f"{path.name} ({size:.0f} KiB): {status}")
        for problem in problems:
            print(f"  {problem}")
        failed = failed or bool(problems)
    print(f"compiled twins: {', '.join(twins)}; package data files: {len(package_data())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
