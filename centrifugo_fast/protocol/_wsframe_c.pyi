"""Typed public surface of the compiled frame parser; identical to `_wsframe_py`."""

__all__ = ["FrameParser", "encode_close", "encode_frame"]

class FrameParser:
    """Parse client frames and report them to a sink.

    The sink's callbacks are looked up once, in ``__init__``: ``on_message(opcode, payload)``,
    ``on_ping(payload)``, ``on_pong(payload)``, ``on_close(code, reason)`` and
    ``on_protocol_error(close_code, reason)``. Bad input never raises: it becomes one
    ``on_protocol_error`` call, after which the parser is `closed` and ignores input.
    With ``inflate=True`` (permessage-deflate negotiated) a message whose first frame has RSV1
    is inflated before delivery: too big once inflated is 1009, a bad deflate stream 1007.

    .. danger::
       The ``payload`` memoryview given to ``on_message`` may point into the parser's receive
       buffer, which is reused for the next read. It is valid ONLY during the call: copy it
       (``bytes(payload)``) or decode it before returning; never keep a reference to it.
    """

    def __init__(
        self,
        sink: object,
        max_message_size: int,
        *,
        require_mask: bool = True,
        inflate: bool = False,
    ) -> None: ...
    @property
    def buffered_size(self) -> int:
        """Bytes held for an incomplete frame or message (0 when idle)."""
    @property
    def closed(self) -> bool:
        """True after a close frame, a protocol error or release(): input is ignored."""
    def release(self) -> None:
        """Drop every buffer (the connection is gone); later calls are no-ops."""
    def get_buffer(self, sizehint: int) -> memoryview:
        """Return a non-empty writable buffer for the next read (BufferedProtocol)."""
    def buffer_updated(self, nbytes: int) -> None:
        """Parse `nbytes` just written into the buffer from get_buffer() (BufferedProtocol)."""
    def feed_data(self, data: bytes | bytearray | memoryview) -> None:
        """Parse `data` as if it had been read through get_buffer()/buffer_updated()."""

def encode_frame(
    opcode: int, payload: bytes | bytearray | memoryview, fin: bool = True, rsv1: bool = False
) -> bytes:
    """Encode one server frame: unmasked, with the minimal length encoding."""

def encode_close(code: int, reason: str = "") -> bytes:
    """Encode a complete close frame; the reason is cut to 123 UTF-8 bytes on a boundary."""
