"""Keep-alive with WebSocket ping frames and a pong deadline, on the node's timer wheel.

Used where the client protocol has no ping of its own: unidirectional WebSocket, and the
bidirectional one with `cf_ws_frame_ping_pong=true`.
"""

from __future__ import annotations

from .. import codes
from ..core.client import Client
from ..core.node import Node
from .websocket import WebSocketConnection


class NativeKeepalive:
    """Pings `conn` every `client.ping_interval`; disconnects `client` (3012) without a pong."""

    __slots__ = ("node", "conn", "client", "_pong_pending", "_generation")

    def __init__(self, node: Node, conn: WebSocketConnection, client: Client) -> None:
        self.node = node
        self.conn = conn
        self.client = client
        self._pong_pending = False
        self._generation = 0

    def start(self) -> None:
        """Schedule the first ping (nothing when pings are disabled)."""
        interval = self.node.config.client.ping_interval
        if interval > 0:
            self.node.timers.call_later(interval, self._ping)

    def pong(self) -> None:
        """The peer answered."""
        self._pong_pending = False

    def _ping(self) -> None:
        if not self.conn.is_open:
            return
        cfg = self.node.config.client
        self._pong_pending = True
        self._generation += 1
        generation = self._generation
        self.conn.ping()
        if cfg.pong_timeout > 0:
            self.node.timers.call_later(cfg.pong_timeout, lambda: self._check_pong(generation))
        self.node.timers.call_later(cfg.ping_interval, self._ping)

    def _check_pong(self, generation: int) -> None:
        if self._pong_pending and generation == self._generation:
            self.client.disconnect(codes.DISCONNECT_NO_PONG)
