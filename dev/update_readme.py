"""Regenerate the README's option table from the config schema (`make docs`)."""

from __future__ import annotations

from pathlib import Path

from centrifugo_fast.config.reference import BEGIN, END, markdown

README = Path(__file__).resolve().parent.parent / "README.md"

text = README.read_text()
start, end = text.index(BEGIN), text.index(END) + len(END)
README.write_text(text[:start] + markdown() + text[end:])
print(f"{README.name}: option table regenerated")
