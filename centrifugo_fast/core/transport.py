"""What the Client needs from a transport; transports implement it (transport/ package)."""

from __future__ import annotations

from typing import Protocol

from ..codes import Disconnect
from .fanout import Writer


class Transport(Protocol):
    """A connection's I/O as seen by core.Client: framing and writes, no sockets."""

    #: Transport name as Centrifugo reports it ("websocket", "http_stream", ...).
    name: str
    #: "json" or "protobuf".
    protocol_type: str
    #: Server-to-client only (no commands, pushes without the Reply envelope).
    unidirectional: bool
    #: Whether the client speaks app-level ping/pong (False with cf_ws_frame_ping_pong).
    app_level_ping: bool
    #: The connection's bounded writer; the hub enqueues prepared frames into it.
    writer: Writer
    #: User ID a trusted proxy put in client.user_id_http_header ("" = none).
    header_user: str

    def write(self, payload: bytes) -> None:
        """Frame one encoded reply/push (or a joined batch) and queue it."""

    def close(self, disconnect: Disconnect | None) -> None:
        """Close with a disconnect code; None closes without one."""
