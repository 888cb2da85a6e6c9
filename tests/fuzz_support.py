"""Hostile requests for the property-based tests (tests/test_fuzz_*.py) and the properties
every answer must have.

The normal run uses the ``ci`` profile (160 requests per test and database, more for tests of
many routes: under two minutes in all); ``PORTCULLIS_TEST_FUZZ=deep`` sends 1,000 per test
and database (3,000 to the admin pages), about 40,000 in all. Both are derandomised and keep no
example database, so a run is reproducible and writes no ``.hypothesis`` folder.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from urllib.parse import quote, quote_from_bytes, urlencode, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oauth.protocol.responses import JSON_PATHS
from oauth.storage.models import Client

_COMMON = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=160, **_COMMON)
settings.register_profile("deep", max_examples=1000, **_COMMON)
PROFILE = os.environ.get("PORTCULLIS_TEST_FUZZ", "ci")

# Apps for fuzzing: limits so high that they never answer 429 (the limiter code still runs
# on every request, with the hostile input), dynamic registration on.
FUZZ_CONFIG = {
    "ALLOW_DYNAMIC_REGISTRATION": True,
    "LOGIN_RATE_LIMIT": "1000000 per minute",
    "SIGNUP_RATE_LIMIT": "1000000 per minute",
    "REGISTRATION_RATE_LIMIT": "1000000 per minute",
    "CLIENT_AUTH_RATE_LIMIT": "1000000 per minute",
}

# --- values ---------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "'\"\\",
    '"; DROP TABLE user; --',
    "%00",
    "%ff",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1",
    "0",
    "00",
    "2147483648",
    "9223372036854775808",
    "1" * 40,
    "١٢٣",  # Arabic-Indic digits: str.isdigit() is True
    "²",
    "true",
    "null",
    "[]",
    "{}",
    '{"a":',
    "[" * 300,
    "../../etc/passwd",
    "javascript:alert(1)",
    "//evil.example/",
    "/\\evil.example",
    "https://evil.example/callback",
    "https://app.example/callback/../other",
    "https://app.example/callback?x=1#frag",
    "view-source:https://app.example/callback",
    "<script>alert(1)</script>",
    "openid email profile",
    "openid \x00",
    "é" * 10,
    "\ud7ff\ue000\uffff",
    "\U0001f600",
    "a" * 5000,
]

text = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=3), st.integers(100, 3000)),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


deep_json = st.integers(50, 3000).flatmap(lambda n: st.sampled_from([deep(n), deep_object(n)]))


def json_dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


def basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def authorization_headers(valid: list[str]):
    """None, the valid values given, or hostile Authorization headers."""
    junk = st.one_of(
        st.builds(basic, st.binary(max_size=30), st.binary(max_size=30)),
        st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
        text.map(lambda t: "Basic " + t.encode("latin-1", "ignore").decode("latin-1")),
        text.map(lambda t: "Bearer " + t.encode("latin-1", "ignore").decode("latin-1")),
        st.sampled_from(["Basic", "Bearer", "Bearer ", "Basic =", "Basic ====", "Digest x"]),
        st.builds(
            lambda h, p: (
                ".".join(
                    base64.urlsafe_b64encode(part.encode()).rstrip(b"=").decode() for part in (h, p)
                )
                + ".c2ln"
            ),
            st.sampled_from(['{"alg":"none"}', '{"alg":"HS256","kid":"x"}', "[]", "{", '"x"']),
            st.sampled_from(['{"sub":"x"}', "{}", '{"exp":1e999}', "null"]),
        ).map(lambda t: "Bearer " + t),
    )
    junk = junk.map(lambda value: value.replace("\r", "").replace("\n", ""))
    if not valid:
        return st.one_of(st.none(), junk)
    return st.one_of(st.sampled_from(valid), st.none(), st.sampled_from(valid), junk)


# --- requests -------------------------------------------------------------------------------

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "text/plain",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/json; charset=utf-16",
    "",
]


@dataclass
class Route:
    """One route to fuzz: its path (``{name}`` parts drawn from ``params``), its methods and
    the fields its handler reads. ``csrf``: browsers may send the valid CSRF token."""

    path: str
    methods: tuple[str, ...]
    fields: dict[str, object] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    csrf: bool = False


@dataclass
class Fuzzed:
    method: str
    path: str
    query: bytes
    body: bytes | None
    content_type: str | None
    headers: dict
    browser: str
    values: dict

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        body = self.body if self.body is None or len(self.body) < 400 else self.body[:400] + b"..."
        return (
            f"Fuzzed({self.browser} {self.method} {self.path}?{self.query[:300]!r} "
            f"type={self.content_type!r} headers={self.headers!r} body={body!r})"
        )


@st.composite
def field_values(draw, fields: dict) -> dict:
    """Each known field left out, plausible (mostly) or hostile (a value or a repeated key);
    sometimes an unknown field too."""
    hostile_rate = draw(st.sampled_from([0, 1, 3]))  # in ten
    values = {}
    for name, strategy in fields.items():
        roll = draw(st.integers(0, 9))  # hypothesis favours small numbers: 0 is plausible
        if roll >= 8:
            continue
        if roll < 8 - hostile_rate:
            value = draw(strategy)
            if value is not None:  # a field's strategy draws None: leave it out
                values[name] = value
        else:
            values[name] = draw(st.one_of(text, st.lists(strategy | text, min_size=2, max_size=3)))
    for name in draw(st.lists(st.text(min_size=1, max_size=10), max_size=2)):
        values[name] = draw(text)
    return values


def _pairs(values: dict) -> list[tuple[str, str]]:
    pairs = []
    for name, value in values.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((name, one if isinstance(one, str) else json_dumps(one)))
    return pairs


def urlencoded(values: dict) -> bytes:
    return urlencode(_pairs(values)).encode()


raw_urlencoded = st.one_of(
    st.binary(max_size=80).map(lambda b: b"x=" + b),
    st.sampled_from(
        [b"email=%ff%fe&password=%c3%28", b"a=%zz%&b", b"=&&=", b"%", b"a" * 5000, b"\x00=\x00"]
    ),
)


@st.composite
def encoded_body(draw, values: dict, csrf: str | None) -> tuple[bytes, str | None, dict]:
    """(body, content type, extra headers): a form, JSON, or bytes of any shape."""
    kind = draw(st.sampled_from(["form"] * 5 + ["json", "json-any", "deep", "raw", "bytes"]))
    headers = {}
    if csrf and draw(st.integers(0, 9)) < 9:
        if kind == "form":
            values = {**values, "csrf_token": csrf}
        else:
            headers["X-CSRFToken"] = csrf  # a JSON body still reaches the form
    if kind == "form":
        return urlencoded(values), "application/x-www-form-urlencoded", headers
    if kind == "json":
        return json_dumps(values).encode(), "application/json", headers
    if kind == "json-any":
        return json_dumps(draw(json_value)).encode(), "application/json", headers
    if kind == "deep":
        return draw(deep_json).encode(), "application/json", headers
    if kind == "raw":
        return draw(raw_urlencoded), "application/x-www-form-urlencoded", headers
    return draw(st.binary(max_size=200)), draw(st.sampled_from(CONTENT_TYPES)) or None, headers


def _path(route: Route, draw) -> str:
    path = route.path
    for name, strategy in route.params.items():
        value = draw(st.one_of(strategy, strategy, text))
        path = path.replace("{" + name + "}", quote(str(value)[:3000], safe="") or "x")
    return path


@st.composite
def fuzzed_request(draw, routes: list[Route], browsers: list[str], csrf: dict, auth) -> Fuzzed:
    route = draw(st.sampled_from(routes))
    method = draw(st.sampled_from(list(route.methods) * (12 // len(route.methods)) + METHODS))
    browser = draw(st.sampled_from(browsers))
    path = _path(route, draw)
    values = draw(field_values(route.fields))
    token = csrf.get(browser) if route.csrf else None
    headers = {}
    authorization = draw(auth)
    if authorization is not None:
        headers["Authorization"] = authorization
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        query = draw(raw_urlencoded) if draw(st.integers(0, 5)) == 5 else urlencoded(values)
        return Fuzzed(method, path, query, None, None, headers, browser, values)
    query = draw(st.sampled_from([b"", b"", urlencoded(values)]))
    if draw(st.integers(0, 5)) == 5:
        query = draw(raw_urlencoded)
    body, content_type, extra = draw(encoded_body(values, token))
    return Fuzzed(method, path, query, body, content_type, {**headers, **extra}, browser, values)


def send(test_client, request: Fuzzed):
    return test_client.open(
        request.path,
        method=request.method,
        # a str is passed through; %-escapes carry the bytes (non-UTF-8 included)
        query_string=quote_from_bytes(request.query, safe="=&%+;/?:@,$!*'()[]"),
        data=request.body,
        content_type=request.content_type,
        headers=request.headers,
    )


# --- properties -----------------------------------------------------------------------------


def registered_redirect_uris(app, client_id=None) -> set[str]:
    with app.app_context():
        query = Client.select()
        if isinstance(client_id, str) and client_id:
            one = list(query.where(Client.client_id == client_id[:64]))
            query = one or query
        return {uri for client in query for uri in client.redirect_uris}


def _internal(location: str) -> bool:
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        return parts.scheme == "http" and parts.netloc == "localhost"
    return location.startswith("/") and not location.startswith(("//", "/\\"))


def _registered(location: str, uris: set[str]) -> bool:
    return any(location == uri or location.startswith((uri + "?", uri + "#")) for uri in uris)


def check_response(app, request: Fuzzed, response) -> None:
    """The properties of every answer: no 5xx, no redirect off to an unregistered URI, the
    protocol endpoints answer JSON (with ``error`` on 4xx)."""
    status = response.status_code
    assert status < 500, f"{status} for {request!r}: {response.get_data()[:500]!r}"
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        if not _internal(location):
            client_id = request.values.get("client_id")
            uris = registered_redirect_uris(app, client_id)
            assert _registered(location, uris), f"redirect to {location!r} for {request!r}"
    if request.method == "HEAD" or status in (204, 304) or 300 <= status < 400:
        return
    if status == 200 and not response.get_data():
        return  # RFC 7009 revocation: 200 and nothing to say
    if request.path.startswith(JSON_PATHS) and request.method != "OPTIONS":
        assert response.mimetype == "application/json", (status, response.mimetype, request)
        payload = response.get_json()
        if status >= 400:
            assert isinstance(payload, dict) and isinstance(payload.get("error"), str), (
                status,
                payload,
                request,
            )
    elif response.mimetype == "application/json":
        json.loads(response.get_data())
    elif status >= 400:
        assert response.mimetype == "text/html", (status, response.mimetype, request)


def run(app, routes, browsers: dict, *, csrf=None, auth=None, reset=None, who=None, scale=1):
    """Send hostile requests to ``routes`` from ``browsers`` (name -> test client; ``who``
    weights them, e.g. ``["admin", "admin", "anon"]``); returns how many were sent. ``reset``
    runs after each one to restore what a request may break; ``scale`` multiplies the
    profile's number of examples (tests with many routes)."""
    sent = [0]
    auth = auth if auth is not None else authorization_headers([])
    profile = settings.get_profile(PROFILE)

    @settings(profile, max_examples=profile.max_examples * scale)
    @given(fuzzed_request(routes, who or list(browsers), csrf or {}, auth))
    def one(request: Fuzzed):
        sent[0] += 1
        response = send(browsers[request.browser], request)
        try:
            check_response(app, request, response)
        finally:
            response.close()  # e.g. a static file's handle
        if reset is not None:
            reset(request, response)

    one()
    return sent[0]
