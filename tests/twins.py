"""Load one named twin (compiled or pure) for a test or benchmark, or skip/fail clearly."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from centrifugo_fast import twins

TWIN_IDS = ["c", "py"]


def load_twin(kind: str, compiled: str, pure: str) -> ModuleType:
    """Return the requested implementation, skipping 'c' when it cannot or must not run."""
    if kind == "py":
        return importlib.import_module(pure)
    if twins.extensions_disabled():
        pytest.skip("compiled twins disabled (CENTRIFUGO_FAST_NO_EXTENSIONS=1)")
    try:
        module = importlib.import_module(compiled)
    except ImportError as exc:
        if twins.extensions_required():
            pytest.fail(f"compiled twin {compiled} missing: {exc}")
        pytest.skip(f"compiled twin {compiled} not built")
    if not twins.is_compiled(module):
        if twins.extensions_required():
            pytest.fail(f"{compiled} resolved to a non-compiled module {module.__file__}")
        pytest.skip(f"{compiled} is not compiled")
    return module
