"""Issue 11 over real HTTP (gunicorn): Authlib's OAuth2Session as a relying party sends the
authorization request as a form POST with the ``claims`` parameter, and verifies the RS256
ID token with the published JWKS."""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.live import csrf, serve
from tests.oauth_helpers import make_client

CALLBACK = "http://127.0.0.1:8765/callback"


def test_authlib_post_authorize_claims_and_rs256_id_token(app, auth, database_url, tmp_path):
    auth.create_user(name="Alice", phone="+15550001")
    client_id, secret = make_client(app, name="Authlib RP", redirect_uris=[CALLBACK])
    with serve(database_url, tmp_path, SECRET_KEY=app.config["SECRET_KEY"]) as base:
        metadata = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
        assert metadata["claims_parameter_supported"] is True
        rp = OAuth2Session(
            client_id,
            secret,
            scope="openid email",
            redirect_uri=CALLBACK,
            code_challenge_method="S256",
        )
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(16)
        claims = {"id_token": {"name": {"essential": True}}, "userinfo": {"phone_number": None}}
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"],
            code_verifier=verifier,
            nonce=nonce,
            claims=json.dumps(claims),
        )
        location = _browser_posts_and_approves(base, url)
        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
        )
        assert token["scope"] == "openid email"
        jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
        decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
        assert decoded.header["alg"] == "RS256"
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": metadata["issuer"]},
            aud={"essential": True, "value": client_id},
            nonce={"essential": True, "value": nonce},
        ).validate(decoded.claims)
        assert decoded.claims["name"] == "Alice" and decoded.claims["email"] == "alice@example.com"
        info = rp.get(metadata["userinfo_endpoint"], timeout=10).json()
        assert info["phone_number"] == "+15550001" and "name" not in info
        assert dict(parse_qsl(urlsplit(location).query))["state"] == state


def _browser_posts_and_approves(base: str, authorization_url: str) -> str:
    """A browser submits the request as a form POST (Core §3.1.2.1), signs in, approves."""
    browser = requests.Session()
    endpoint, _, query = authorization_url.partition("?")
    page = browser.post(endpoint, data=dict(parse_qsl(query)), timeout=10)
    assert page.status_code == 200 and urlsplit(page.url).path == "/login", page.url
    next_path = re.search(r'name="next"[^>]*value="([^"]+)"', page.text).group(1)
    consent = browser.post(
        base + "/login",
        data={
            "email": "alice@example.com", "password": "correct horse",
            "csrf_token": csrf(page.text), "next": next_path.replace("&amp;", "&"),
        },
        timeout=10,
    )  # fmt: skip
    assert "/oauth/consent" in consent.url, consent.url
    assert "phone" in consent.text.lower()  # the claims request is on the consent page
    approved = browser.post(
        consent.url,
        data={"csrf_token": csrf(consent.text), "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    location = approved.headers["Location"]
    assert location.startswith(CALLBACK), location
    return location
