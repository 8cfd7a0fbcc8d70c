"""The hub: this node's connections by user and subscribers by channel, and fan-out.

Subscribers are stored as their Writers so a broadcast touches nothing else per subscriber.
Each distinct (codec, framing) combination gets a small integer encoding key; a publication
is encoded at most once per key in use (design.md §4).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..engine.types import ClientInfo, Publication
from ..protocol.codec import Codec, PayloadEncodingError
from ..protocol.messages import JoinLeaveMsg, Push
from .delta import DeltaChannel, DeltaReceiver, deliver
from .fanout import PreparedPush, Writer, broadcast

if TYPE_CHECKING:
    from .client import Client

PushBuilder = Callable[[Codec], Push]


class PushEncoder:
    """Turns a Push into a complete transport frame for one codec and framing."""

    def __init__(self, codec: Codec, frame: Callable[[bytes], bytes], unidirectional: bool) -> None:
        self.codec = codec
        self.frame = frame
        self.unidirectional = unidirectional

    def encode(self, build: PushBuilder) -> bytes | None:
        """The framed push, or None when its payload cannot be expressed in this codec."""
        codec = self.codec
        try:
            push = build(codec)
        except PayloadEncodingError:
            return None
        return self.frame(codec.encode_push(push))


class Hub:
    """Connections and subscriptions of this node."""

    def __init__(self) -> None:
        self._encoders: list[PushEncoder] = []
        self._encoder_names: dict[str, int] = {}
        self._subs: dict[str, dict[str, Writer]] = {}
        #: Subscribers that receive join/leave pushes.
        self._join_leave: dict[str, dict[str, Writer]] = {}
        #: Positioned subscribers, whose stream position is checked on every publication.
        self._positioned: dict[str, dict[str, Client]] = {}
        #: Subscribers that negotiated delta compression, per channel.
        self._delta: dict[str, DeltaChannel] = {}
        #: Subscriptions being set up: publications are held for them until the reply is out.
        self._pending: dict[str, dict[str, list[Publication]]] = {}
        self._clients: dict[str, Client] = {}
        self._users: dict[str, dict[str, Client]] = {}
        self._num_subs = 0

    # ---- encodings ----

    def register_encoding(self, name: str, encoder: PushEncoder) -> int:
        """Register a (codec, framing) combination once; return its encoding key."""
        key = self._encoder_names.get(name)
        if key is None:
            key = len(self._encoders)
            self._encoders.append(encoder)
            self._encoder_names[name] = key
        return key

    def encoding_key(self, name: str) -> int | None:
        """The key of an already registered encoding, or None."""
        return self._encoder_names.get(name)

    def encode_for(self, key: int, build: PushBuilder) -> bytes | None:
        """Encode one push for one encoding key."""
        return self._encoders[key].encode(build)

    # ---- connections ----

    def add_client(self, client: Client) -> None:
        """Register an authenticated connection."""
        self._clients[client.id] = client
        self._users.setdefault(client.user, {})[client.id] = client

    def remove_client(self, client: Client) -> None:
        """Forget a connection (its subscriptions are removed separately)."""
        if self._clients.pop(client.id, None) is None:
            return
        conns = self._users.get(client.user)
        if conns is not None:
            conns.pop(client.id, None)
            if not conns:
                del self._users[client.user]

    def clients(self) -> list[Client]:
        """A snapshot of every connection."""
        return list(self._clients.values())

    def user_clients(self, user: str) -> list[Client]:
        """A snapshot of one user's connections."""
        return list(self._users.get(user, {}).values())

    # ---- subscriptions ----

    def begin_subscription(self, channel: str, client: Client) -> bool:
        """Hold the channel's publications for `client` until `add_subscription`.

        Returns True when the node had no interest in the channel yet (the broker must
        subscribe before the stream position is read).
        """
        first = channel not in self._subs and channel not in self._pending
        self._pending.setdefault(channel, {})[client.id] = []
        return first

    def take_pending(self, channel: str, client: Client) -> list[Publication]:
        """Stop holding publications for `client`; return what was held, in order."""
        pending = self._pending.get(channel)
        if pending is None:
            return []
        held = pending.pop(client.id, [])
        if not pending:
            del self._pending[channel]
        return held

    def is_interested(self, channel: str) -> bool:
        """True while the channel has subscribers or subscriptions being set up."""
        return channel in self._subs or channel in self._pending

    def add_subscription(
        self,
        channel: str,
        client: Client,
        *,
        join_leave: bool = False,
        positioned: bool = False,
        delta: bool = False,
    ) -> bool:
        """Subscribe `client` to `channel`; True when it is the channel's first subscriber."""
        subs = self._subs.get(channel)
        first = subs is None
        if subs is None:
            subs = {}
            self._subs[channel] = subs
        if client.id not in subs:
            subs[client.id] = client.writer
            self._num_subs += 1
        if join_leave:
            self._join_leave.setdefault(channel, {})[client.id] = client.writer
        if positioned:
            self._positioned.setdefault(channel, {})[client.id] = client
        if delta:
            state = self._delta.get(channel)
            if state is None:
                state = self._delta[channel] = DeltaChannel()
            state.receivers[client.id] = DeltaReceiver(client.writer)
        return first

    def set_delta_base(self, channel: str, client: Client, data: bytes) -> None:
        """A delta subscriber holds `data` (its last recovered publication) as its base."""
        state = self._delta.get(channel)
        receiver = state.receivers.get(client.id) if state is not None else None
        if state is not None and receiver is not None:
            receiver.has_base = True
            state.last = data

    def remove_subscription(self, channel: str, client: Client) -> bool:
        """Unsubscribe `client`; True when the channel has no subscribers left."""
        for extra in (self._join_leave, self._positioned):
            entries = extra.get(channel)
            if entries is not None and entries.pop(client.id, None) is not None and not entries:
                del extra[channel]
        state = self._delta.get(channel)
        if state is not None and state.receivers.pop(client.id, None) is not None:
            if not state.receivers:
                del self._delta[channel]
        subs = self._subs.get(channel)
        if subs is None or subs.pop(client.id, None) is None:
            return False
        self._num_subs -= 1
        if not subs:
            del self._subs[channel]
            return True
        return False

    def num_subscribers(self, channel: str) -> int:
        """Subscribers of one channel on this node."""
        return len(self._subs.get(channel, ()))

    def broadcast_publication(self, channel: str, pub: Publication) -> int:
        """Deliver a publication to the channel's subscribers; return how many were visited."""
        pending = self._pending.get(channel)
        if pending:
            for held in pending.values():
                held.append(pub)
        subs = self._subs.get(channel)
        if not subs:
            return 0
        positioned = self._positioned.get(channel)
        if positioned and pub.offset:
            subs = self._check_positions(channel, pub, positioned, subs)

        def build(codec: Codec) -> Push:
            return Push(channel=channel, pub=codec.publication(pub))

        delta = self._delta.get(channel)
        if delta is None:
            return self.broadcast(subs.values(), build)
        receivers = delta.receivers
        plain = (w for client_id, w in subs.items() if client_id not in receivers)
        return self.broadcast(plain, build) + deliver(channel, pub, delta, self.encode_for)

    def _check_positions(
        self,
        channel: str,
        pub: Publication,
        positioned: dict[str, Client],
        subs: dict[str, Writer],
    ) -> dict[str, Writer]:
        """Advance positioned subscribers; cut those with a gap or another epoch (2500/3010).

        Returns the subscribers that get this publication: stale ones are removed first, and
        a subscriber already past this offset (a duplicate) is skipped.
        """
        stale: list[Client] = []
        duplicates: list[str] = []
        for client in positioned.values():
            outcome = client.advance_position(channel, pub.offset, pub.epoch)
            if outcome < 0:
                stale.append(client)
            elif outcome == 0:
                duplicates.append(client.id)
        for client in stale:
            client.insufficient_state(channel)
        if duplicates:
            subs = {k: w for k, w in self._subs.get(channel, {}).items() if k not in duplicates}
        elif stale:
            subs = self._subs.get(channel, {})
        return subs

    def broadcast_join(self, channel: str, info: ClientInfo) -> int:
        """Deliver a join push to the channel's join/leave receivers."""
        receivers = self._join_leave.get(channel)
        if not receivers:
            return 0
        return self.broadcast(
            receivers.values(),
            lambda codec: Push(channel=channel, join=JoinLeaveMsg(info=codec.client_info(info))),
        )

    def broadcast_leave(self, channel: str, info: ClientInfo) -> int:
        """Deliver a leave push to the channel's join/leave receivers."""
        receivers = self._join_leave.get(channel)
        if not receivers:
            return 0
        return self.broadcast(
            receivers.values(),
            lambda codec: Push(channel=channel, leave=JoinLeaveMsg(info=codec.client_info(info))),
        )

    def broadcast(self, writers: Iterable[Writer], build: PushBuilder) -> int:
        """Encode `build` once per encoding key and enqueue it to every writer."""
        encoders = self._encoders

        def encode(key: int) -> bytes | None:
            return encoders[key].encode(build)

        return broadcast(writers, PreparedPush(encode))

    # ---- stats ----

    @property
    def num_clients(self) -> int:
        """Connections on this node."""
        return len(self._clients)

    @property
    def num_users(self) -> int:
        """Distinct users on this node."""
        return len(self._users)

    @property
    def num_channels(self) -> int:
        """Channels with at least one subscriber on this node."""
        return len(self._subs)

    @property
    def num_subscriptions(self) -> int:
        """Subscriptions on this node."""
        return self._num_subs

    def channels(self, pattern: str = "") -> Iterator[tuple[str, int]]:
        """(channel, subscriber count) for channels matching a glob pattern ("" = all)."""
        for channel, subs in self._subs.items():
            if not pattern or fnmatch.fnmatchcase(channel, pattern):
                yield channel, len(subs)
