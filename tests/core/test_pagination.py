import base64

import orjson
import pytest

from instagram.errors import ApiError
from instagram.pagination import (
    MAX_CURSOR_LENGTH,
    Cursor,
    decode_cursor,
    encode_cursor,
    page_body,
    parse_page_request,
)


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_cursor_round_trips_a_64_bit_id_exactly_and_tells_nothing_of_it():
    big = 2**63 - 1

    encoded = encode_cursor(ts=1_700_000_000_123, id=big)
    again = encode_cursor(ts=1_700_000_000_123, id=big)
    raw = base64.urlsafe_b64decode(encoded + "==")

    assert decode_cursor(encoded) == decode_cursor(again) == Cursor(ts=1_700_000_000_123, id=big)
    assert encoded != again  # a fresh nonce each time
    assert raw[:1] == b"\x02"
    assert str(big).encode() not in raw and b"1700000000123" not in raw
    assert len(encoded) == 60 < MAX_CURSOR_LENGTH


def test_a_cursor_changed_by_a_client_or_sealed_under_another_key_is_a_400(settings):
    encoded = encode_cursor(ts=5, id=20)
    raw = bytearray(base64.urlsafe_b64decode(encoded + "=="))
    raw[-1] ^= 1
    settings.SECRET_KEY = "another-" + "k" * 50
    for cursor in (_b64(bytes(raw)), encoded):
        with pytest.raises(ApiError) as caught:
            decode_cursor(cursor)
        assert (caught.value.status_code, caught.value.error_code) == (400, "invalid_cursor")


def test_a_plain_version_1_cursor_is_still_read():
    assert decode_cursor(_b64({"v": 1, "ts": 7, "id": "9"})) == Cursor(ts=7, id=9)


@pytest.mark.parametrize(
    "raw",
    [
        "!!!not-base64!!!",
        _b64(b"not json"),
        _b64([1, 2]),
        _b64({"v": 2, "ts": 1, "id": "1"}),
        _b64({"v": 1, "ts": "1", "id": "1"}),
        _b64({"v": 1, "ts": 1, "id": 1}),
        _b64({"v": 1, "ts": 1, "id": "-5"}),
        _b64({"v": 1, "ts": 1, "id": str(2**64)}),
        _b64({"v": 1, "ts": -1, "id": "1"}),
        _b64({"v": 1, "ts": True, "id": "1"}),
        _b64({"v": 1, "ts": 1, "id": "1", "k": 1}),
        _b64({"v": 1, "ts": 1, "id": "1", "k": ""}),
        "A" * 300,
    ],
)
def test_malformed_cursor_is_a_400(raw):
    with pytest.raises(ApiError) as caught:
        decode_cursor(raw)

    assert caught.value.status_code == 400
    assert caught.value.error_code == "invalid_cursor"


def test_a_cursor_is_taken_only_by_a_list_of_its_kind():
    plain, ranked = encode_cursor(ts=5, id=20), encode_cursor(ts=5, id=20, kind="ranked")

    assert parse_page_request({"cursor": plain}).cursor == Cursor(ts=5, id=20)
    assert parse_page_request({"cursor": ranked}, kind="ranked").cursor == Cursor(
        ts=5, id=20, kind="ranked"
    )
    for cursor, kind in [(ranked, None), (plain, "ranked"), (ranked, "other")]:
        with pytest.raises(ApiError) as caught:
            parse_page_request({"cursor": cursor}, kind=kind)
        assert (caught.value.status_code, caught.value.error_code) == (400, "invalid_cursor")


@pytest.mark.parametrize("limit", ["0", "51", "-1", "abc", "1e3", "99999999999999999999"])
def test_limit_outside_1_to_50_is_a_400(limit):
    with pytest.raises(ApiError) as caught:
        parse_page_request({"limit": limit})

    assert caught.value.status_code == 400
    assert caught.value.error_code == "invalid_limit"


def test_page_request_defaults_and_bounds():
    assert parse_page_request({}).limit == 20
    assert parse_page_request({"limit": "1"}).limit == 1
    assert parse_page_request({"limit": "50"}).limit == 50
    assert parse_page_request({"cursor": ""}).cursor is None


def test_page_body_continues_after_the_last_item_shown():
    rows = [(5, 105), (4, 104), (3, 103)]

    body = page_body("items", rows, limit=2, render=lambda r: str(r[1]), position=lambda r: r)

    assert body["items"] == ["105", "104"]
    assert body["has_more"] is True
    assert decode_cursor(body["next_cursor"]) == Cursor(ts=4, id=104)
    last = page_body("items", rows[2:], limit=2, render=lambda r: str(r[1]), position=lambda r: r)
    assert last == {"items": ["103"], "next_cursor": None, "has_more": False}


def test_a_cursor_is_read_under_a_key_rotated_out_into_the_fallbacks(settings):
    settings.SECRET_KEY = "old-" + "k" * 50
    issued = encode_cursor(ts=5, id=20)

    settings.SECRET_KEY = "new-" + "k" * 50
    settings.SECRET_KEY_FALLBACKS = ["old-" + "k" * 50]

    assert decode_cursor(issued) == Cursor(ts=5, id=20)
