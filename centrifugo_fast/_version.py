"""Package version, kept in one place for setuptools and the CLI."""

__version__ = "0.1.0"
