"""Helpers to drive the OAuth flows through Flask's test client like a browser and an app would."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from oauth.registry import clients
from tests.conftest import AuthActions, csrf_token_from

REDIRECT = "https://app.example/callback"


def basic_auth_header(client_id: str, secret: str) -> dict:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def make_client(
    app, *, public=False, redirect_uris=(REDIRECT,), grant_types=None, name="Test App", **kwargs
):
    with app.app_context():
        client, secret = clients.create_client(
            name, list(redirect_uris), public=public, grant_types=grant_types, **kwargs
        )
    return client.client_id, secret


def query(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def decode_jwt_unverified(token: str) -> tuple[dict, dict]:
    def part(segment: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _ = token.split(".")
    return part(header), part(payload)


class Flow:
    """One app (client) and one browser user going through /oauth/authorize."""

    def __init__(self, app, client, *, client_id, secret=None, redirect_uri=REDIRECT):
        self.app = app
        self.browser = client
        self.client_id = client_id
        self.secret = secret
        self.redirect_uri = redirect_uri
        self.verifier, self.challenge = pkce_pair()
        self.auth = AuthActions(client, app)

    def authorize_params(self, **overrides) -> dict:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid email profile",
            "state": "st-" + secrets.token_hex(4),
            "nonce": "n-" + secrets.token_hex(4),
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides):
        return self.browser.get("/oauth/authorize?" + urlencode(self.authorize_params(**overrides)))

    def consent_page(self, response):
        """Follow /oauth/authorize's redirect to the consent page (user already signed in)."""
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        assert location.startswith("/oauth/consent?authorization_id="), location
        return location, self.browser.get(location)

    def decide(self, consent_location: str, page, decision: str = "approve"):
        token = csrf_token_from(page.get_data(as_text=True))
        return self.browser.post(consent_location, data={"csrf_token": token, "decision": decision})

    def get_code(self, **overrides) -> tuple[str, dict]:
        """Run authorize -> sign-in (if not signed in, as the default test user) -> consent
        (if asked) -> code; returns (code, redirect query)."""
        params = self.authorize_params(**overrides)
        response = self.browser.get("/oauth/authorize?" + urlencode(params))
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        if location.startswith("/login?"):  # nothing stored yet: the request comes back after
            signed_in = self.auth.login(next=query(location)["next"])
            response = self.browser.get(signed_in.headers["Location"])
            location = response.headers["Location"]
        if location.startswith("/oauth/consent"):
            page = self.browser.get(location)
            if page.status_code == 200:
                response = self.decide(location, page)
                location = response.headers["Location"]
            else:
                location = page.headers["Location"]
        assert location.startswith(self.redirect_uri), location
        result = query(location)
        assert result.get("state") == params["state"]
        return result["code"], result

    def token_request(self, data: dict, *, auth: str = "basic"):
        headers = {}
        data = dict(data)
        if self.secret and auth == "basic":
            raw = f"{self.client_id}:{self.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        elif self.secret and auth == "post":
            data.update(client_id=self.client_id, client_secret=self.secret)
        elif auth != "none-at-all":
            data.setdefault("client_id", self.client_id)
        return self.browser.post("/oauth/token", data=data, headers=headers)

    def exchange(self, code: str, *, verifier: str | None = None, auth: str = "basic", **extra):
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier if verifier is not None else self.verifier,
            **extra,
        }
        return self.token_request({k: v for k, v in data.items() if v is not None}, auth=auth)

    def refresh(self, refresh_token: str, **extra):
        return self.token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        )

    def tokens(self, **overrides) -> dict:
        code, _ = self.get_code(**overrides)
        response = self.exchange(code)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def userinfo(self, access_token: str):
        return self.browser.get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
