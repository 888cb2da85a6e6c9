"""What the fuzz tests attack: clients, an API, users, signed-in browsers with their CSRF
tokens, tokens, a dynamically registered client and pending authorization requests."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import strategies as st

from oauth.accounts import users as accounts
from oauth.registry import apis, client_grants, clients
from oauth.storage.models import User
from tests.conftest import AuthActions, csrf_token_from
from tests.fuzz_support import basic, text
from tests.oauth_helpers import REDIRECT, Flow, make_client

PASSWORD = "correct horse"
USER_EMAIL = "alice@example.com"
ADMIN_EMAIL = "root@example.com"
API_IDENTIFIER = "https://api.example/orders"


class World:
    def __init__(self, app):
        self.app = app
        self.conf_id, self.secret = make_client(
            app,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            redirect_uris=(REDIRECT, "http://127.0.0.1/cb", "com.example.app:/cb"),
        )
        self.public_id, _ = make_client(app, public=True, name="Public App")
        with app.app_context():
            api = apis.create_api(API_IDENTIFIER, "Orders", ["read:orders", "write:orders"])
            client_grants.grant(clients.get_client(self.conf_id), api)
            self.api_id = api.id
        self.browsers = {"anon": app.test_client()}
        self.csrf = {"anon": self._csrf("anon")}
        auth = AuthActions(self.browsers["anon"], app)
        self.user_id = auth.create_user(USER_EMAIL, PASSWORD, name="Alice").id
        self.admin_id = auth.create_user(ADMIN_EMAIL, PASSWORD, is_admin=True).id
        self.sign_in("user", USER_EMAIL)
        self.sign_in("admin", ADMIN_EMAIL)
        flow = Flow(app, self.browsers["user"], client_id=self.conf_id, secret=self.secret)
        tokens = flow.tokens(scope="openid email profile offline_access")
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens.get("refresh_token", "")
        self.id_token = tokens.get("id_token", "")
        self.challenge = flow.challenge
        self.dynamic = self._register()

    def _csrf(self, browser: str) -> str:
        page = self.browsers[browser].get("/login?reauth=1")
        return csrf_token_from(page.get_data(as_text=True))

    def sign_in(self, browser: str, email: str) -> None:
        """A fresh browser signed in as ``email``, with the CSRF token of its session."""
        self.browsers[browser] = self.app.test_client()
        auth = AuthActions(self.browsers[browser], self.app)
        assert auth.login(email, PASSWORD).status_code == 302
        page = self.browsers[browser].get("/settings/profile")
        self.csrf[browser] = csrf_token_from(page.get_data(as_text=True))

    def new_anon(self) -> None:
        self.browsers["anon"] = self.app.test_client()
        self.csrf["anon"] = self._csrf("anon")

    def _register(self) -> dict:
        response = self.browsers["anon"].post(
            "/oauth/register",
            json={"redirect_uris": ["https://dyn.example/cb"], "client_name": "Dyn"},
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def pending_authorizations(self, count: int) -> list[str]:
        ids = []
        for n in range(count):
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": self.public_id if n % 2 else self.conf_id,
                    "redirect_uri": REDIRECT,
                    "scope": "openid email",
                    "state": f"s{n}",
                    "code_challenge": self.challenge,
                    "code_challenge_method": "S256",
                    "prompt": "consent",
                }
            )
            location = self.browsers["user"].get("/oauth/authorize?" + query).headers["Location"]
            assert "authorization_id=" in location, location
            ids.append(location.split("authorization_id=", 1)[1])
        return ids

    def set_password(self, user_id: str, password: str) -> None:
        with self.app.app_context():
            accounts.set_password(User.get_by_id(user_id), password, via="admin")

    def restore_accounts(self) -> None:
        """Undo what an admin form may have done to the two accounts the browsers use."""
        with self.app.app_context():
            for user_id, admin in ((self.user_id, False), (self.admin_id, True)):
                user = User.get_by_id(user_id)
                if user.disabled or user.is_admin != admin:
                    User.update(disabled=False, is_admin=admin).where(User.id == user_id).execute()

    # --- values the handlers would accept, mixed with hostile ones by fuzz_support ---------

    def client_ids(self):
        return st.sampled_from([self.conf_id, self.public_id, self.dynamic["client_id"]])

    def redirect_uris(self):
        return st.sampled_from(
            [REDIRECT, "https://dyn.example/cb", "com.example.app:/cb", "http://127.0.0.1/cb"]
        )

    def tokens(self):
        return st.sampled_from(
            [self.access_token, self.refresh_token, self.id_token, self.dynamic["client_secret"]]
        )

    def basic_headers(self) -> list[str]:
        return [
            basic(self.conf_id.encode(), self.secret.encode()),
            basic(self.dynamic["client_id"].encode(), self.dynamic["client_secret"].encode()),
            basic(self.public_id.encode(), b""),
        ]

    def scopes(self):
        return st.one_of(
            st.sampled_from(
                ["openid", "openid email profile offline_access", "read:orders", "phone address"]
            ),
            st.lists(st.sampled_from(["openid", "email", "read:orders", '"', "\\", "é"])).map(
                " ".join
            ),
            text,
        )

    def resources(self):
        return st.sampled_from([API_IDENTIFIER, "https://other.example/", "urn:x", '"\\é'])
