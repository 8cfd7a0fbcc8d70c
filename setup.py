"""Build the compiled twins of the hot modules.

Switches (environment):
  CENTRIFUGO_FAST_BUILD_EXTENSIONS=yes  a compile failure is fatal (wheels, CI)
  CENTRIFUGO_FAST_BUILD_EXTENSIONS=no   build a pure-Python package
  (unset)                               extensions are optional: a failure falls back to pure
  CENTRIFUGO_FAST_NO_EXTENSIONS=1       same as BUILD_EXTENSIONS=no
  CENTRIFUGO_FAST_CYTHON_TRACE=1        line tracing (coverage of compiled code)
  CENTRIFUGO_FAST_DEBUG=1               -O0 -g and the DEBUG compile-time flag
  CENTRIFUGO_FAST_ANNOTATE=1            write cython -a HTML next to each source

Two kinds of compiled module exist (see design.md section 3):
  * hand-written .pyx with a pure twin written separately (protocol/_wsframe_c.pyx);
  * one pure-mode source `_<name>_py.py` compiled as `_<name>_c` with the augmenting
    `_<name>_c.pxd`. Cython finds an augmenting .pxd only next to a source of the same base
    name, so the source is copied to build/cython-gen/ under the compiled name first.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).parent
GEN = ROOT / "build" / "cython-gen"

HAND_WRITTEN = ["centrifugo_fast/protocol/_wsframe_c.pyx"]
PURE_MODE = [
    "centrifugo_fast/core/_fanout_py.py",
    "centrifugo_fast/engine/_history_py.py",
]


def _flag(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


def _mode() -> str:
    if _flag("CENTRIFUGO_FAST_NO_EXTENSIONS") in ("1", "yes", "true"):
        return "no"
    value = _flag("CENTRIFUGO_FAST_BUILD_EXTENSIONS")
    if value in ("yes", "no"):
        return value
    return "optional"


def _copy_if_changed(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def _pure_mode_extension(source: str) -> Extension:
    src = ROOT / source
    base = src.name.removesuffix("_py.py")
    module_dir = src.parent.relative_to(ROOT)
    pxd = src.parent / f"{base}_c.pxd"
    out_dir = GEN / module_dir
    _copy_if_changed(src, out_dir / f"{base}_c.py")
    _copy_if_changed(pxd, out_dir / f"{base}_c.pxd")
    name = ".".join((*module_dir.parts, f"{base}_c"))
    rel = (out_dir / f"{base}_c.py").relative_to(ROOT)
    return Extension(name, [str(rel)], depends=[str(pxd.relative_to(ROOT))])


def _extensions(mode: str) -> list[Extension]:
    if mode == "no":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if mode == "yes":
            raise
        print("centrifugo-fast: Cython missing, building a pure package", file=sys.stderr)
        return []
    trace = _flag("CENTRIFUGO_FAST_CYTHON_TRACE") in ("1", "yes", "true")
    debug = _flag("CENTRIFUGO_FAST_DEBUG") in ("1", "yes", "true")
    macros: list[tuple[str, str | None]] = []
    if trace:
        macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    compile_args = ["-O0", "-g"] if debug else ["-O2"]
    exts = [
        Extension(
            p.removesuffix(".pyx").replace("/", "."),
            [p],
            depends=[p.removesuffix(".pyx") + ".pxd"],
        )
        for p in HAND_WRITTEN
    ]
    exts += [_pure_mode_extension(p) for p in PURE_MODE]
    for ext in exts:
        ext.define_macros = list(macros)
        ext.extra_compile_args = list(compile_args)
        ext.optional = mode != "yes"
    directives = {
        "language_level": "3",
        "boundscheck": False,
        "wraparound": False,
        "initializedcheck": False,
        "cdivision": True,
        "embedsignature": True,
        "linetrace": trace,
    }
    return list(
        cythonize(
            exts,
            compiler_directives=directives,
            compile_time_env={"DEBUG": debug},
            annotate=_flag("CENTRIFUGO_FAST_ANNOTATE") in ("1", "yes", "true"),
        )
    )


mode = _mode()
extensions = _extensions(mode)
print(
    f"centrifugo-fast: {'accelerated' if extensions else 'pure'} build (extensions {mode})",
    file=sys.stderr,
)
setup(ext_modules=extensions)
