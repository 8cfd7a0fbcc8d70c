"""Choose between a compiled hot-path module and its pure-Python twin.

`CENTRIFUGO_FAST_NO_EXTENSIONS=1` forces the pure twin; `CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1`
turns a silent fallback into an ImportError. The first wins when both are set (the pure test
run sets both), as design.md section 10 decides.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

_TRUE = ("1", "yes", "true", "on")

#: public selector module name -> "c" or "py", for diagnostics and tests.
LOADED: dict[str, str] = {}


def extensions_disabled() -> bool:
    """True when the pure twins are forced by the environment."""
    return os.environ.get("CENTRIFUGO_FAST_NO_EXTENSIONS", "").strip().lower() in _TRUE


def extensions_required() -> bool:
    """True when falling back to a pure twin must be an error."""
    if extensions_disabled():
        return False
    return os.environ.get("CENTRIFUGO_FAST_REQUIRE_EXTENSIONS", "").strip().lower() in _TRUE


def is_compiled(module: ModuleType) -> bool:
    """True when the module was loaded from a compiled extension."""
    return str(getattr(module, "__file__", "")).endswith((".so", ".pyd"))


def load(selector: str, compiled: str, pure: str) -> ModuleType:
    """Import the compiled twin if allowed and present, else the pure one."""
    if not extensions_disabled():
        try:
            module = importlib.import_module(compiled)
            if is_compiled(module):
                LOADED[selector] = "c"
                return module
            error: Exception = ImportError(f"{compiled} is not a compiled extension")
        except ImportError as exc:
            error = exc
        if extensions_required():
            raise ImportError(
                f"{compiled} is required (CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1) "
                f"but could not be loaded: {error}"
            ) from error
    LOADED[selector] = "py"
    return importlib.import_module(pure)
