"""Issue 9 item 5: a remembered consent covers the resources (APIs) approved, and only
registered APIs or DEFAULT_AUDIENCE are user-token audiences."""

from urllib.parse import urlencode

import pytest

from oauth.registry import apis
from oauth.storage.db import database
from oauth.storage.models import Consent
from tests.conftest import csrf_token_from
from tests.oauth_helpers import REDIRECT, Flow, decode_jwt_unverified, make_client, query

PHOTOS = "https://photos.example/api"
BILLING = "urn:example:billing"


@pytest.fixture
def flow(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    with app.app_context():
        apis.create_api(PHOTOS, "Photo Library")
        apis.create_api(BILLING, "Billing")
    return flow


def redirect_error(response) -> str:
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT + "?"), response.headers["Location"]
    return query(response.headers["Location"]).get("error")


def asks(response) -> bool:
    location = response.headers["Location"]
    assert location.startswith(("/oauth/consent", REDIRECT)), location
    return location.startswith("/oauth/consent")


def aud(tokens: dict) -> str:
    return decode_jwt_unverified(tokens["access_token"])[1]["aud"]


def test_a_new_resource_asks_again_and_the_page_names_the_api(flow, app):
    assert aud(flow.tokens(resource=PHOTOS)) == PHOTOS
    assert not asks(flow.authorize(resource=PHOTOS))
    assert asks(flow.authorize())  # DEFAULT_AUDIENCE was not approved
    location, page = flow.consent_page(flow.authorize(resource=BILLING))
    html = page.get_data(as_text=True)
    assert "Billing" in html and BILLING in html
    assert "Photo Library" not in html
    flow.decide(location, page)
    with app.app_context():
        assert sorted(Consent.get().resources) == sorted([PHOTOS, BILLING])
    assert not asks(flow.authorize(resource=BILLING))
    assert not asks(flow.authorize(resource=PHOTOS))
    silent = query(flow.authorize(prompt="none").headers["Location"])
    assert silent["error"] == "consent_required"


def test_default_audience_named_or_not_is_one_resource(flow, app):
    default = app.config["DEFAULT_AUDIENCE"]
    assert aud(flow.tokens()) == default
    assert not asks(flow.authorize(resource=default))
    assert aud(flow.tokens(resource=default)) == default
    assert asks(flow.authorize(resource=PHOTOS))


@pytest.mark.parametrize("login_first", [False, True])
def test_unregistered_resources_are_invalid_target(flow, app, login_first):
    if not login_first:
        flow.auth.logout()
    for resource in (
        app.config["ISSUER"],
        app.config["ISSUER"] + "/oauth/userinfo",
        "https://photos.example/api/",  # not the registered identifier
        "https://elsewhere.example",
        "urn:example:unknown",
    ):
        assert redirect_error(flow.authorize(resource=resource)) == "invalid_target", resource


def test_a_registered_issuer_is_accepted(flow, app):
    with app.app_context():
        apis.create_api(app.config["ISSUER"], "This server")
    assert aud(flow.tokens(resource=app.config["ISSUER"])) == app.config["ISSUER"]


def test_the_token_endpoint_refuses_resources_not_granted(flow, app):
    code, _ = flow.get_code(resource=PHOTOS)
    response = flow.exchange(code, resource=BILLING)
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_target")
    response = flow.exchange(code, resource=app.config["ISSUER"])
    assert response.get_json()["error"] == "invalid_target"
    tokens = flow.exchange(code, resource=PHOTOS).get_json()  # the code was not burned
    assert aud(tokens) == PHOTOS
    refresh = tokens["refresh_token"]
    for other in (BILLING, app.config["ISSUER"], app.config["DEFAULT_AUDIENCE"]):
        response = flow.refresh(refresh, resource=other)
        assert (response.status_code, response.get_json()["error"]) == (400, "invalid_target")
    two = flow.token_request(
        {"grant_type": "refresh_token", "refresh_token": refresh, "resource": [PHOTOS, BILLING]}
    )
    assert two.get_json()["error"] == "invalid_target"
    renewed = flow.refresh(refresh, resource=PHOTOS)
    assert renewed.status_code == 200
    assert aud(renewed.get_json()) == PHOTOS


def test_a_deleted_api_is_no_longer_an_audience(flow, app):
    tokens = flow.tokens(resource=PHOTOS)
    with app.app_context():
        apis.delete_api(apis.get_api(PHOTOS))
    response = flow.refresh(tokens["refresh_token"])
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_target")
    assert redirect_error(flow.authorize(resource=PHOTOS)) == "invalid_target"


def test_consents_from_before_resources_cover_the_default_audience(flow, app):
    flow.get_code(resource=PHOTOS)
    with app.app_context():
        # What migration 0008 leaves on an existing row.
        database.execute_sql('UPDATE "consent" SET "resources" = NULL')
        assert Consent.get().resources is None
    assert not asks(flow.authorize())
    assert asks(flow.authorize(resource=PHOTOS))
    location, page = flow.consent_page(flow.authorize(resource=PHOTOS))
    flow.decide(location, page)
    with app.app_context():
        assert sorted(Consent.get().resources) == sorted([app.config["DEFAULT_AUDIENCE"], PHOTOS])


def test_authorized_apps_page_lists_the_apis(flow, app):
    flow.get_code(resource=PHOTOS)
    page = flow.browser.get("/settings/apps").get_data(as_text=True)
    assert "Test App" in page and "Photo Library" in page and PHOTOS in page
    revoked = flow.browser.post(
        f"/settings/apps/{flow.client_id}/revoke", data={"csrf_token": csrf_token_from(page)}
    )
    assert revoked.status_code == 302
    assert "Photo Library" not in flow.browser.get("/settings/apps").get_data(as_text=True)
    assert asks(flow.authorize(resource=PHOTOS))


def test_self_registered_clients_get_an_error_page(app, client):
    client_id, secret = make_client(app, registration_type="dynamic")
    flow = Flow(app, client, client_id=client_id, secret=secret)
    params = flow.authorize_params(resource="https://nowhere.example")
    response = flow.browser.get("/oauth/authorize?" + urlencode(params))
    assert response.status_code == 400
    assert "Location" not in response.headers
