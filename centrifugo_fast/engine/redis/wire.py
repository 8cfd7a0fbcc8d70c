"""What the Redis engine stores and publishes: Centrifugo's layout (engine.md §2.2, §2.3).

Publications and ClientInfo travel as Protobuf messages of the client protocol, encoded by
our own codec. PUB/SUB payloads:

* `<protobuf Publication>`: a publication without history (it starts with a field tag,
  never with `_`);
* `__p1:<offset>:<epoch>__<protobuf>`: a publication kept in history;
* `__d1:<offset>:<epoch>:<len>:<previous>:<len>:<protobuf>`: the same for a delta publish;
* `__j__<protobuf ClientInfo>` / `__l__<protobuf ClientInfo>`: join / leave.

A history stream entry holds the Publication without offset in field `d`; its offset is the
entry ID.
"""

from __future__ import annotations

from ...protocol.codec import CodecError
from ...protocol.codec_protobuf import PROTOBUF, _encode_message, decode_message
from ...protocol.messages import ClientInfoMsg, PublicationMsg
from ..types import ClientInfo, Publication

JOIN = 1
LEAVE = 2
PUBLICATION = 3


class WireError(ValueError):
    """A payload from Redis that is not in the engine's format."""


def encode_client_info(info: ClientInfo) -> bytes:
    """ClientInfo as Protobuf bytes."""
    return _encode_message(PROTOBUF.client_info(info))


def _client_info(msg: ClientInfoMsg) -> ClientInfo:
    return ClientInfo(msg.user, msg.client, bytes(msg.conn_info), bytes(msg.chan_info))


def decode_client_info(data: bytes) -> ClientInfo:
    """ClientInfo from Protobuf bytes."""
    try:
        msg: ClientInfoMsg = decode_message(data, 0, len(data), ClientInfoMsg)
    except CodecError as exc:
        raise WireError(str(exc)) from exc
    return _client_info(msg)


def encode_publication(pub: Publication, delta: bool) -> bytes:
    """A Publication as Protobuf bytes: data, info, tags, time and `delta` (no offset)."""
    return _encode_message(
        PublicationMsg(
            data=PROTOBUF.payload(pub.data),
            info=PROTOBUF.client_info(pub.info) if pub.info is not None else None,
            tags=pub.tags or {},
            delta=delta,
            time=pub.time,
        )
    )


def decode_publication(data: bytes | memoryview, offset: int = 0, epoch: str = "") -> Publication:
    """A Publication from Protobuf bytes; `offset` fills a missing offset.

    Whether the payload is JSON is unknown here, so JSON subscribers check it (as for a
    binary publish on one node).
    """
    raw = bytes(data)
    try:
        msg: PublicationMsg = decode_message(raw, 0, len(raw), PublicationMsg)
    except CodecError as exc:
        raise WireError(str(exc)) from exc
    return Publication(
        data=bytes(msg.data),
        info=_client_info(msg.info) if msg.info is not None else None,
        offset=msg.offset or offset,
        tags=msg.tags or None,
        time=msg.time,
        epoch=epoch if (msg.offset or offset) else "",
        data_is_json=False,
        delta=msg.delta,
    )


def join_frame(info: ClientInfo) -> bytes:
    return b"__j__" + encode_client_info(info)


def leave_frame(info: ClientInfo) -> bytes:
    return b"__l__" + encode_client_info(info)


def _split_number(data: bytes, start: int) -> tuple[int, int]:
    """A decimal number ending at the next ':' starting at `start`: (value, index after ':')."""
    end = data.find(b":", start)
    if end < 0:
        raise WireError("truncated header")
    try:
        return int(data[start:end]), end + 1
    except ValueError as exc:
        raise WireError("bad number in header") from exc


def parse_message(data: bytes) -> tuple[int, Publication | ClientInfo]:
    """A PUB/SUB payload: (PUBLICATION, Publication) or (JOIN | LEAVE, ClientInfo)."""
    if not data.startswith(b"__"):
        # Without history a delta request rides on the publication's own flag.
        return PUBLICATION, decode_publication(data)
    kind = data[2:3]
    if kind == b"p":
        if not data.startswith(b"__p1:"):
            raise WireError("unknown publication frame version")
        offset, pos = _split_number(data, 5)
        end = data.find(b"__", pos)
        if end < 0:
            raise WireError("truncated publication header")
        epoch = data[pos:end].decode()
        pub = decode_publication(memoryview(data)[end + 2 :], offset, epoch)
        pub.offset = offset
        pub.epoch = epoch
        return PUBLICATION, pub
    if kind == b"d":
        if not data.startswith(b"__d1:"):
            raise WireError("unknown delta frame version")
        offset, pos = _split_number(data, 5)
        end = data.find(b":", pos)
        if end < 0:
            raise WireError("truncated delta header")
        epoch = data[pos:end].decode()
        prev_len, pos = _split_number(data, end + 1)
        pos += prev_len + 1  # the previous payload: our hub keeps its own delta base
        if pos > len(data):
            raise WireError("truncated delta frame")
        cur_len, pos = _split_number(data, pos)
        if pos + cur_len != len(data):
            raise WireError("bad delta frame length")
        pub = decode_publication(memoryview(data)[pos:], offset, epoch)
        pub.offset = offset
        pub.epoch = epoch
        pub.delta = True
        return PUBLICATION, pub
    if data.startswith(b"__j__"):
        return JOIN, decode_client_info(data[5:])
    if data.startswith(b"__l__"):
        return LEAVE, decode_client_info(data[5:])
    raise WireError("unknown frame")


__all__ = [
    "JOIN",
    "LEAVE",
    "PUBLICATION",
    "WireError",
    "decode_client_info",
    "decode_publication",
    "encode_client_info",
    "encode_publication",
    "join_frame",
    "leave_frame",
    "parse_message",
]
