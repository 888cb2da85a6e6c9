"""Nobody learns which clients or accounts exist from the answers (issue 9 item 13)."""

from __future__ import annotations

import difflib
import re

import pytest

from tests.m2m_helpers import setup_m2m
from tests.oauth_helpers import basic_auth_header


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_an_unknown_client_and_a_wrong_secret_get_the_same_answer(make_app, path):
    app = make_app(RATELIMIT_ENABLED=False)
    client_id, _ = setup_m2m(app)
    http = app.test_client()
    form = {"grant_type": "client_credentials", "token": "t"}

    def answer(**kwargs):
        response = http.post(path, **kwargs)
        return response.status_code, response.get_json(), response.headers["WWW-Authenticate"]

    answers = {
        str(answer(data=form, headers=basic_auth_header(who, "wrong")))
        for who in (client_id, "no-such-client")
    }
    answers |= {
        str(answer(data={**form, "client_id": who, "client_secret": "wrong"}))
        for who in (client_id, "no-such-client")
    }
    answers |= {str(answer(data={**form, "client_id": who})) for who in (client_id, "nobody")}
    assert len(answers) == 1, answers
    assert "invalid_client" in answers.pop()


def test_sign_in_says_the_same_for_an_unknown_account_and_a_wrong_password(auth, client):
    auth.create_user()

    def page(email: str):
        response = auth.login(email=email, password="wrong password")
        body = response.get_data(as_text=True).replace(email, "EMAIL")
        # CSRF tokens (the form's and the passkey block's data-csrf) carry a timestamp: two
        # pages a second apart differ there and only there.
        body = re.sub(r'name="csrf_token"[^>]*>', "CSRF", body)
        return response.status_code, re.sub(r'data-csrf="[^"]*"', "data-csrf=CSRF", body)

    known, unknown = page("alice@example.com"), page("nobody@example.com")
    # The lines that differ, if any.
    diff = difflib.unified_diff(known[1].splitlines(), unknown[1].splitlines(), lineterm="")
    assert known == unknown, "\n".join(diff)
