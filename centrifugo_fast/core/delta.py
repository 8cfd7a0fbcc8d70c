"""Delta-compressed delivery (fossil) to the subscribers that negotiated it (spec §10).

Every subscriber of a channel receives every publication in order, so after its first
publication each one holds the same base: the channel's previous payload. One delta per
publication therefore serves all of them, and one frame per (encoding, full/delta) is shared.
A subscriber's first publication after (re)subscribing is sent in full.
"""

from __future__ import annotations

from collections.abc import Callable

from ..engine.types import Publication
from ..protocol.codec import Codec
from ..protocol.fossil import create_delta
from ..protocol.messages import Push
from .fanout import FAIL_BAD_PAYLOAD, Writer

#: Encodes a push for one encoding key; None when the payload cannot be expressed there.
EncodeFor = Callable[[int, Callable[[Codec], Push]], bytes | None]


class DeltaReceiver:
    """One delta subscriber: its writer and whether it holds the channel's last payload."""

    __slots__ = ("writer", "has_base")

    def __init__(self, writer: Writer, has_base: bool = False) -> None:
        self.writer = writer
        self.has_base = has_base


class DeltaChannel:
    """The delta subscribers of one channel and the payload they all hold as their base."""

    __slots__ = ("receivers", "last")

    def __init__(self) -> None:
        self.receivers: dict[str, DeltaReceiver] = {}
        #: Payload of the channel's last publication delivered on this node.
        self.last: bytes | None = None


def make_delta(base: bytes, target: bytes) -> bytes | None:
    """A fossil delta from `base` to `target`, or None when sending it in full is better.

    Deltas of UTF-8 payloads stay UTF-8 so JSON-protocol clients can carry them as strings.
    """
    try:
        delta = create_delta(base, target, json_safe=True)
    except ValueError:
        delta = create_delta(base, target)  # binary payload: only Protobuf clients get it
    return delta if len(delta) < len(target) else None


def deliver(channel: str, pub: Publication, state: DeltaChannel, encode_for: EncodeFor) -> int:
    """Send `pub` to every delta subscriber of `channel`; return how many were visited."""
    delta = None
    if pub.delta and state.last is not None:
        delta = make_delta(state.last, pub.data)
    frames: dict[tuple[int, bool], bytes | None] = {}
    for receiver in state.receivers.values():
        use_delta = delta is not None and receiver.has_base
        key = (receiver.writer.encoding_key, use_delta)
        if key in frames:
            frame = frames[key]
        else:
            data = delta if use_delta and delta is not None else pub.data

            def build(codec: Codec, data: bytes = data, is_delta: bool = use_delta) -> Push:
                return Push(channel=channel, pub=codec.delta_publication(pub, data, is_delta))

            frame = frames[key] = encode_for(key[0], build)
        if frame is None:
            receiver.writer.fail(FAIL_BAD_PAYLOAD)
        else:
            receiver.writer.enqueue(frame)
        receiver.has_base = True
    state.last = pub.data
    return len(state.receivers)


def recovered_chain(pubs: list[Publication]) -> list[tuple[Publication, bytes, bool]]:
    """Recovered publications for a delta subscriber: the first full, each next a delta
    against its predecessor when that is smaller (spec §10)."""
    chain: list[tuple[Publication, bytes, bool]] = []
    previous: bytes | None = None
    for pub in pubs:
        delta = make_delta(previous, pub.data) if previous is not None else None
        chain.append((pub, delta, True) if delta is not None else (pub, pub.data, False))
        previous = pub.data
    return chain
