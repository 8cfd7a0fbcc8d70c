"""Twin selection: environment switches and the compiled-twin guarantee."""

from __future__ import annotations

import os

import pytest

from centrifugo_fast import twins


def test_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRIFUGO_FAST_NO_EXTENSIONS", "1")
    monkeypatch.setenv("CENTRIFUGO_FAST_REQUIRE_EXTENSIONS", "1")
    assert twins.extensions_disabled() and not twins.extensions_required()
    monkeypatch.delenv("CENTRIFUGO_FAST_NO_EXTENSIONS")
    assert twins.extensions_required()


def test_forced_pure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRIFUGO_FAST_NO_EXTENSIONS", "1")
    module = twins.load("t", "centrifugo_fast.core._fanout_c", "centrifugo_fast.core._fanout_py")
    assert module.__name__ == "centrifugo_fast.core._fanout_py" and twins.LOADED["t"] == "py"


def test_missing_compiled_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CENTRIFUGO_FAST_NO_EXTENSIONS", raising=False)
    monkeypatch.delenv("CENTRIFUGO_FAST_REQUIRE_EXTENSIONS", raising=False)
    module = twins.load("t2", "centrifugo_fast.nonexistent_c", "centrifugo_fast.core._fanout_py")
    assert module.__name__.endswith("_fanout_py")
    monkeypatch.setenv("CENTRIFUGO_FAST_REQUIRE_EXTENSIONS", "1")
    with pytest.raises(ImportError, match="required"):
        twins.load("t3", "centrifugo_fast.nonexistent_c", "centrifugo_fast.core._fanout_py")


def test_required_extensions_are_actually_loaded() -> None:
    """In the compiled CI run every selector must have picked its compiled twin."""
    from centrifugo_fast.core import fanout  # noqa: F401
    from centrifugo_fast.engine import history  # noqa: F401
    from centrifugo_fast.protocol import frames  # noqa: F401

    expected = "py" if twins.extensions_disabled() else "c"
    if not twins.extensions_required() and not twins.extensions_disabled():
        pytest.skip("neither switch set: either twin is acceptable")
    assert twins.LOADED["core.fanout"] == expected
    assert twins.LOADED["protocol.frames"] == expected
    assert twins.LOADED["engine.history"] == expected
    assert os.environ.get("CENTRIFUGO_FAST_NO_EXTENSIONS", "") != "1" or expected == "py"
