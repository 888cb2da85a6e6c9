"""The management API through real client-credentials tokens from /oauth/token."""

from __future__ import annotations

from oauth.registry import client_grants, clients, management_api
from oauth.storage.models import AuditEvent
from tests.oauth_helpers import basic_auth_header

ALL_SCOPES = tuple(management_api.SCOPES)


class ManagementCaller:
    """A machine client granted some management scopes, and its token."""

    def __init__(self, app, http, scopes=ALL_SCOPES, name="Automation"):
        self.app, self.http = app, http
        with app.app_context():
            client, self.secret = clients.create_client(
                name, [], grant_types=["client_credentials"]
            )
            api = management_api.ensure()
            client_grants.grant(client, api, list(scopes))
        self.client_id = client.client_id
        self.token = self.fetch_token(scopes)

    def fetch_token(self, scopes=None) -> str:
        data = {"grant_type": "client_credentials", "audience": self.identifier}
        if scopes:
            data["scope"] = " ".join(scopes)
        response = self.http.post(
            "/oauth/token", data=data, headers=basic_auth_header(self.client_id, self.secret)
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    @property
    def identifier(self) -> str:
        with self.app.app_context():
            return management_api.identifier()

    def headers(self, **extra) -> dict:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def call(self, method: str, path: str, *, json=None, headers=None, **kwargs):
        return self.http.open(
            "/api/v1" + path,
            method=method,
            json=json,
            headers={**self.headers(), **(headers or {})},
            **kwargs,
        )

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.call("POST", path, json=json, **kwargs)

    def patch(self, path, json=None, **kwargs):
        return self.call("PATCH", path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self.call("DELETE", path, **kwargs)

    def walk(self, path: str, limit: int, cursor: str | None = None) -> list[dict]:
        """Every row of a list, page by page through next_cursor (from ``cursor``)."""
        rows, pages = [], 0
        separator = "&" if "?" in path else "?"
        while True:
            url = f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            response = self.get(url)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            assert len(body["data"]) <= limit
            rows += body["data"]
            cursor, pages = body["next_cursor"], pages + 1
            assert pages <= 1000, "the cursor never ends"
            if cursor is None:
                return rows


def events(app, event_type: str) -> list[AuditEvent]:
    with app.app_context():
        query = AuditEvent.select().where(AuditEvent.event_type == event_type)
        return list(query.order_by(AuditEvent.id))


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["type"].startswith("urn:portcullis:problem:")
    assert body["title"] and body["detail"]
    return body
