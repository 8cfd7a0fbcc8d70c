"""Node-to-node control messages, carried by the broker's control channel (engine.md §5).

Every node announces itself every few seconds so `info` can list the cluster, and server API
calls that target a user's connections (disconnect, unsubscribe, subscribe, refresh) are
sent to all nodes, because the user may be connected anywhere. Emulated commands go to the
one node holding the connection. With the memory engine the only receiver is the node itself.
"""

from __future__ import annotations

import msgspec

#: How often a node announces itself; a node unseen for NODE_TTL is dropped from `info`.
NODE_INFO_INTERVAL = 3.0
NODE_TTL = 3 * NODE_INFO_INTERVAL + 1.0


class NodeInfo(msgspec.Struct, frozen=True):
    """What one node tells the others about itself."""

    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    num_subs: int
    uptime: int


class NodeAnnouncement(msgspec.Struct, tag="node"):
    info: NodeInfo


class DisconnectUser(msgspec.Struct, tag="disconnect"):
    user: str
    code: int
    reason: str
    client: str = ""
    session: str = ""
    whitelist: list[str] = []


class UnsubscribeUser(msgspec.Struct, tag="unsubscribe"):
    user: str
    channel: str
    client: str = ""
    session: str = ""


class SubscribeUser(msgspec.Struct, tag="subscribe"):
    user: str
    channel: str
    client: str = ""
    session: str = ""
    chan_info: bytes = b""
    data: bytes = b""
    expire_at: int = 0
    #: Option overrides as {"presence": true, ...}.
    override: dict[str, bool] = {}


class RefreshUser(msgspec.Struct, tag="refresh"):
    user: str
    client: str = ""
    session: str = ""
    expired: bool = False
    expire_at: int = 0
    info: bytes | None = None


class EmulationData(msgspec.Struct, tag="emulation"):
    """Commands of an emulated (HTTP-streaming/SSE) connection whose `POST /emulation`
    reached another node than the one holding its stream; sent to that node only."""

    node: str
    session: str
    #: The command batch, as the session's Client decodes it.
    data: bytes


ControlCommand = (
    NodeAnnouncement
    | DisconnectUser
    | UnsubscribeUser
    | SubscribeUser
    | RefreshUser
    | EmulationData
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ControlCommand)


def encode(command: ControlCommand) -> bytes:
    """Serialise a control command for the broker's control channel."""
    return _encoder.encode(command)


def decode(data: bytes) -> ControlCommand:
    """Parse a control command; raises msgspec errors on junk."""
    command: ControlCommand = _decoder.decode(data)
    return command
