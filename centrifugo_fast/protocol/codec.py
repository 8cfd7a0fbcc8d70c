"""The Codec interface: client protocol messages <-> bytes for one encoding (JSON, Protobuf)."""

from __future__ import annotations

from typing import Protocol

from msgspec import Raw

from ..engine.types import ClientInfo, Publication
from .messages import ClientInfoMsg, Command, PublicationMsg, Push, Reply


class CodecError(Exception):
    """Incoming bytes are not a valid command batch (the client gets 3501)."""


class PayloadEncodingError(Exception):
    """A payload cannot be expressed in this encoding (JSON client, non-JSON bytes: 3506)."""


class Codec(Protocol):
    """Encodes replies/pushes and decodes command batches for one protocol type."""

    name: str
    #: WebSocket opcode of frames carrying this encoding (1 text, 2 binary).
    ws_opcode: int
    #: What a server ping is on the wire for a bidirectional connection.
    ping_reply: bytes

    def decode_commands(self, data: bytes) -> list[Command]: ...

    def encode_reply(self, reply: Reply) -> bytes: ...

    def encode_push(self, push: Push) -> bytes: ...

    def join(self, payloads: list[bytes]) -> bytes: ...

    def payload(self, data: bytes) -> Raw: ...

    def client_info(self, info: ClientInfo) -> ClientInfoMsg: ...

    def publication(self, pub: Publication) -> PublicationMsg: ...

    def delta_publication(
        self, pub: Publication, data: bytes, is_delta: bool
    ) -> PublicationMsg: ...
