"""centrifugo-fast: a Centrifugo-compatible real-time messaging server."""

from ._version import __version__

__all__ = ["__version__"]
