"""Request ids minted by the gateway and the service keep the shape `uuid.uuid4().hex` had."""

from __future__ import annotations

import uuid

from modelport.records import new_request_id


def test_a_minted_request_id_is_a_uuid4_in_32_hex_digits() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for minted in ids:
        parsed = uuid.UUID(hex=minted)
        assert parsed.hex == minted  # 32 lowercase hex digits, no dashes
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
