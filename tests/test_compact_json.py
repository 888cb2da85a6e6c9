"""The hot path's JSON (``oauth/compact_json.py``): the standard library's compact bytes for
what tokens hold, its acceptance for the rest, and JSON only."""

import datetime
import json
import uuid
from dataclasses import dataclass

import pytest

from oauth.compact_json import dumps

CLAIMS = {
    "iss": "https://auth.example",
    "sub": "40e7edcf-9c9c-44f6-81f8-95ab22588e6e",
    "aud": ["https://api.example", "other"],
    "exp": 1765170000,
    "email_verified": True,
    "phone": None,
    "name": 'Zoë Ångström \u2603 "quoted" \\ back\nline',
    "amr": [{"method": "pwd", "timestamp": 1765166400}],
    "app_metadata": {"provider": "email", "tenants": [1, 2, 3], "nested": {"deep": []}},
    "user_metadata": {},
    "weight": 0.5,
}


def standard(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def test_a_token_payload_is_the_standard_librarys_compact_utf8_bytes():
    assert dumps(CLAIMS) == json.dumps(CLAIMS, separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(dumps(CLAIMS)) == CLAIMS


def test_what_orjson_refuses_and_json_takes_still_works():
    value = {"big": 2**70, 7: "an integer key", "deep": [[[[1]]]], "id": uuid.UUID(int=1)}
    assert json.loads(dumps(value)) == {
        "big": 2**70, "7": "an integer key", "deep": [[[[1]]]],
        "id": "00000000-0000-0000-0000-000000000001",
    }  # fmt: skip
    nested: list = []
    for _ in range(300):  # deeper than orjson's 254 levels
        nested = [nested]
    assert dumps(nested) == standard(nested)


@dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [datetime.datetime(2026, 1, 1), datetime.date(2026, 1, 1), Point(1), {1, 2}, object(), b"x"],
)
def test_what_json_cannot_hold_is_refused(value):
    with pytest.raises(TypeError):
        dumps({"claim": value})


def test_a_lone_surrogate_is_escaped_and_nan_becomes_null():
    assert dumps({"name": "Zoë \ud800", 2**70: 1}) == b'{"name":"Zo\\u00eb \\ud800","%d":1}' % 2**70
    assert dumps({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'
