"""Signal handling where the event loop cannot install handlers (Windows' asyncio loops)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from centrifugo_fast.transport.server import install_signal_handlers


class _NoSignalsLoop(asyncio.SelectorEventLoop):
    """A loop that behaves like ProactorEventLoop/SelectorEventLoop on Windows."""

    def add_signal_handler(self, sig: int, callback: object, *args: object) -> None:
        raise NotImplementedError


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    loop = _NoSignalsLoop()
    try:
        yield loop
    finally:
        loop.close()
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_without_add_signal_handler_signals_still_reach_the_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    calls: list[str] = []
    install_signal_handlers(loop, lambda: calls.append("stop"), lambda: calls.append("reload"))
    os.kill(os.getpid(), signal.SIGHUP)
    os.kill(os.getpid(), signal.SIGTERM)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert calls == ["reload", "stop"]


def test_a_platform_without_sighup_gets_no_reload_handler(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signal.getsignal(signal.SIGHUP)
    monkeypatch.delattr(signal, "SIGHUP")
    calls: list[str] = []
    install_signal_handlers(loop, lambda: calls.append("stop"), lambda: calls.append("reload"))
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGHUP) is before
    os.kill(os.getpid(), signal.SIGINT)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert calls == ["stop"]
