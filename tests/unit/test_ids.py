"""Client IDs are canonical random (version 4) UUIDs, unique across pool refills."""

from __future__ import annotations

import uuid

from centrifugo_fast.core.ids import new_client_id


def test_ids_are_version_4_uuids_in_canonical_form() -> None:
    for _ in range(600):  # more than two pool refills
        text = new_client_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_ids_do_not_repeat() -> None:
    ids = [new_client_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
