"""JSON encoding of the client protocol (spec/client-protocol.md §2.1).

Commands and replies are compact JSON objects joined by a single newline. Payload fields hold
raw JSON, pasted byte-exact except that raw newline bytes are removed (they are only ever
insignificant whitespace in valid JSON, and a newline would split the batch).
"""

from __future__ import annotations

import msgspec
from msgspec import Raw

from ..engine.types import ClientInfo, Publication
from .codec import CodecError, PayloadEncodingError
from .messages import EMPTY_RAW, ClientInfoMsg, Command, PublicationMsg, Push, Reply

_decoder = msgspec.json.Decoder(Command)
_encoder = msgspec.json.Encoder()
_validator = msgspec.json.Decoder()


def embed(data: bytes, checked: bool = True) -> Raw:
    """Wrap payload bytes for embedding; check they are JSON unless known to be."""
    if not data:
        return EMPTY_RAW
    if not checked:
        try:
            _validator.decode(data)
        except msgspec.DecodeError as exc:
            raise PayloadEncodingError("payload is not valid JSON") from exc
    if b"\n" in data:
        data = data.replace(b"\n", b"")
    return Raw(data)


def raw_bytes(raw: Raw) -> bytes:
    """The payload bytes of a decoded Raw field; empty for absent or JSON null."""
    data = bytes(raw)
    return b"" if data == b"null" else data


class JsonCodec:
    """The JSON protocol codec."""

    name = "json"
    ws_opcode = 1
    ping_reply = b"{}"

    def decode_commands(self, data: bytes) -> list[Command]:
        """Decode a newline-joined batch of commands (one trailing newline tolerated)."""
        try:
            commands = _decoder.decode_lines(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(str(exc)) from exc
        if not commands:
            raise CodecError("empty command batch")
        return commands

    def encode_reply(self, reply: Reply) -> bytes:
        """Encode one reply (or push envelope) as a compact JSON object."""
        return _encoder.encode(reply)

    def encode_push(self, push: Push) -> bytes:
        """Encode a push in its bidirectional envelope `{"push":{...}}`."""
        return _encoder.encode(Reply(push=push))

    def join(self, payloads: list[bytes]) -> bytes:
        """Join several encoded replies into one frame payload."""
        return b"\n".join(payloads)

    def payload(self, data: bytes) -> Raw:
        """Embed payload bytes (raw JSON) into a message field."""
        return embed(data)

    def client_info(self, info: ClientInfo) -> ClientInfoMsg:
        """Wire form of a ClientInfo."""
        return ClientInfoMsg(
            user=info.user,
            client=info.client,
            conn_info=embed(info.conn_info),
            chan_info=embed(info.chan_info),
        )

    def delta_publication(self, pub: Publication, data: bytes, is_delta: bool) -> PublicationMsg:
        """A publication for a delta subscriber: `data` (full payload or fossil delta) travels
        as a JSON string, whatever it holds (spec §10)."""
        if not pub.data_is_json and not is_delta:
            embed(pub.data, False)  # non-JSON payloads cannot reach JSON clients (3506)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadEncodingError("delta payload is not UTF-8") from exc
        return PublicationMsg(
            data=Raw(_encoder.encode(text)),
            info=self.client_info(pub.info) if pub.info is not None else None,
            offset=pub.offset,
            tags=pub.tags or {},
            delta=is_delta,
            epoch=pub.epoch if pub.offset == 1 else "",
        )

    def publication(self, pub: Publication) -> PublicationMsg:
        """Wire form of a Publication (epoch only on offset 1, as Centrifugo sends it)."""
        return PublicationMsg(
            data=embed(pub.data, pub.data_is_json),
            info=self.client_info(pub.info) if pub.info is not None else None,
            offset=pub.offset,
            tags=pub.tags or {},
            epoch=pub.epoch if pub.offset == 1 else "",
        )


class UniJsonCodec(JsonCodec):
    """JSON for unidirectional transports: every push is a bare Push object (no Reply
    envelope), a ping is the empty push `{}` (spec/client-protocol.md §9.6)."""

    def encode_push(self, push: Push) -> bytes:
        """Encode a push as the top-level object."""
        return _encoder.encode(push)


JSON = JsonCodec()
UNI_JSON = UniJsonCodec()
