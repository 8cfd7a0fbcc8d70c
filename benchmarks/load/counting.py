"""Where deliveries are counted: in the asyncio clients (pure Python) or in the compiled
receive loop that takes their sockets over (`_receiver`, built by ``make bench-load``)."""

from __future__ import annotations

import asyncio
import importlib
import threading
from typing import Any, Protocol

from .wsclient import Tally, WsClient


class Counter(Protocol):
    """Delivery counting with latency windows."""

    kind: str

    def delivered(self) -> int:
        """Deliveries so far."""
        ...

    def start_window(self) -> None:
        """Start recording latencies afresh."""
        ...

    def stop_window(self) -> dict[str, float]:
        """Stop recording; p50/p99/p999 latency of the window in ms."""
        ...

    def lost(self) -> int:
        """Connections that closed."""
        ...

    def close(self) -> None:
        """Stop counting."""
        ...


def _ms(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))] / 1e6


class TallyCounter:
    """Counting done by the asyncio clients themselves (the pure-Python path)."""

    kind = "asyncio"

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def delivered(self) -> int:
        """Deliveries so far."""
        return self.tally.delivered

    def start_window(self) -> None:
        """Start recording latencies afresh."""
        self.tally.latencies = []

    def stop_window(self) -> dict[str, float]:
        """Stop recording; p50/p99/p999 latency of the window in ms."""
        values = self.tally.latencies or []
        self.tally.latencies = None
        values.sort()
        return {
            "p50_ms": _ms(values, 0.5),
            "p99_ms": _ms(values, 0.99),
            "p999_ms": _ms(values, 0.999),
        }

    def lost(self) -> int:
        """Connections that closed."""
        return sum(self.tally.disconnects.values())

    def close(self) -> None:
        """Nothing to stop."""


class CompiledCounter:
    """The clients' sockets handed to the compiled receive loop, run in its own thread."""

    kind = "compiled"

    def __init__(self, receiver: Any, fds: list[int]) -> None:
        self.receiver = receiver
        for fd in fds:
            receiver.add(fd)
        self._thread = threading.Thread(target=receiver.run, name="receiver", daemon=True)
        self._thread.start()

    def delivered(self) -> int:
        """Deliveries so far."""
        return int(self.receiver.delivered)

    def start_window(self) -> None:
        """Start recording latencies afresh."""
        self.receiver.start_window()

    def stop_window(self) -> dict[str, float]:
        """Stop recording; p50/p99/p999 latency of the window in ms."""
        self.receiver.stop_window()
        r = self.receiver
        return {
            "p50_ms": r.percentile(0.5),
            "p99_ms": r.percentile(0.99),
            "p999_ms": r.percentile(0.999),
        }

    def lost(self) -> int:
        """Connections that closed."""
        return int(self.receiver.closed)

    def close(self) -> None:
        """Stop the receive thread."""
        self.receiver.stop()
        self._thread.join(timeout=5)


def compiled_loop() -> Any:
    """The compiled module (`_receiver`): Receiver, storm, close_all."""
    try:
        # Built by `make build-receiver`, not by setup.py: imported by name.
        return importlib.import_module("benchmarks.load._receiver")
    except ImportError as exc:
        raise RuntimeError(
            "the compiled receive loop is not built: run `make build-receiver` "
            "(or pass --asyncio-receiver)"
        ) from exc


async def counter_for(
    clients: list[WsClient], tally: Tally, protobuf: bool, compiled: bool
) -> Counter:
    """The compiled counter when asked for and built, else the asyncio one."""
    if compiled:
        receiver = compiled_loop().Receiver(len(clients), protobuf)
        return CompiledCounter(receiver, await _hand_over(clients))
    return TallyCounter(tally)


async def _hand_over(clients: list[WsClient], batch: int = 500) -> list[int]:
    """Every client's socket as a descriptor we own, the transports' own ones closed.

    A transport closes its descriptor on the next loop turn, so yield between batches: the
    process then never holds two descriptors per connection (10 000 connections fit a
    20 000 limit).
    """
    fds: list[int] = []
    for start in range(0, len(clients), batch):
        fds.extend(client.hand_over() for client in clients[start : start + batch])
        await asyncio.sleep(0)
    return fds
