import uuid
from datetime import UTC, datetime

import pytest

from apranova.errors import ValidationFailed
from apranova.pagination import (
    build_page,
    decode_cursor,
    encode_cursor,
    parse_limit,
    timestamp_id_keyset,
    timestamp_uuid_keyset,
)


def test_cursor_round_trip():
    key = ["2026-11-26T08:00:00+00:00", "7f1c"]
    assert decode_cursor(encode_cursor(key), 2) == key


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", encode_cursor([1]), encode_cursor({"a": 1})])
def test_bad_cursors_are_a_validation_error(cursor):
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, 2)
    assert caught.value.code == "invalid_cursor"


def test_timestamp_id_keyset_parses_the_key_and_rejects_a_forged_one():
    assert timestamp_id_keyset(None) is None
    key = timestamp_id_keyset(encode_cursor(["2026-11-26T08:00:00+00:00", 7]))
    assert key == [datetime(2026, 11, 26, 8, tzinfo=UTC), 7]
    for forged in (["not a time", 1], ["2026-11-26T08:00:00+00:00", "x"], [None, 1], ["2026-11-26", None]):
        with pytest.raises(ValidationFailed) as caught:
            timestamp_id_keyset(encode_cursor(forged))
        assert caught.value.code == "invalid_cursor"


def test_limit_bounds():
    assert parse_limit(None) == 20
    assert parse_limit("100") == 100
    for bad in ("0", "101", "ten", -1):
        with pytest.raises(ValidationFailed):
            parse_limit(bad)


def test_page_reads_one_extra_row_to_know_there_is_more():
    rows = [{"id": i} for i in range(6)]
    page = build_page(rows, 5, key_of=lambda r: [r["id"]])
    assert [r["id"] for r in page.items] == [0, 1, 2, 3, 4]
    assert decode_cursor(page.next_cursor, 1) == [4]
    assert build_page(rows[:5], 5, key_of=lambda r: [r["id"]]).next_cursor is None


def test_a_timestamp_uuid_keyset_parses_its_cursor_or_is_a_422():
    when, row_id = datetime(2026, 11, 26, 12, 0, tzinfo=UTC), uuid.uuid4()
    assert timestamp_uuid_keyset(None) is None
    assert timestamp_uuid_keyset(encode_cursor([when.isoformat(), str(row_id)])) == [when, str(row_id)]
    # Upper case is the same id; any other spelling uuid.UUID takes is not a cursor we made.
    assert timestamp_uuid_keyset(encode_cursor([when.isoformat(), str(row_id).upper()])) == [when, str(row_id)]
    other_spellings = [
        f"urn:uuid:{row_id}",
        f"{{{row_id}}}",
        row_id.hex,
        f"{row_id.hex[:7]}-{row_id.hex[7:12]}-{row_id.hex[12:16]}-{row_id.hex[16:20]}-{row_id.hex[20:]}",
    ]
    for forged in (
        ["yesterday", str(row_id)],
        [when.isoformat(), "7"],
        [None, None],
        [when.isoformat()],
        *([when.isoformat(), spelling] for spelling in other_spellings),
    ):
        with pytest.raises(ValidationFailed) as raised:
            timestamp_uuid_keyset(encode_cursor(forged))
        assert raised.value.code == "invalid_cursor"
