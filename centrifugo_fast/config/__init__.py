"""Configuration: schema (Centrifugo v6 names and defaults) and loader."""

from .loader import load_config, parse_duration
from .schema import ChannelOptions, Config, Duration, NamespaceConfig

__all__ = [
    "ChannelOptions",
    "Config",
    "Duration",
    "NamespaceConfig",
    "load_config",
    "parse_duration",
]
