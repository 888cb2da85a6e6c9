"""gunicorn with several workers sharing one database, over real HTTP."""

import pytest
import requests

# free_port, wait_until_healthy, csrf and ROOT moved to tests/live.py; kept importable here.
from tests.live import ROOT, csrf, free_port, serve, wait_until_healthy

__all__ = ["ROOT", "csrf", "free_port", "gunicorn", "wait_until_healthy"]


@pytest.fixture
def gunicorn(database_url, tmp_path):
    """Four workers on this test's database (tests/live.py ``serve``)."""
    with serve(database_url, tmp_path, workers=4, LOGIN_RATE_LIMIT=None) as base:
        yield base


def test_several_workers_share_database_and_sessions(gunicorn, tmp_path):
    # all four workers raced to create the secret key: there is exactly one, and sessions
    # made by one worker are honoured by the others
    assert (tmp_path / "instance" / "secret_key").exists()
    browser = requests.Session()
    page = browser.get(gunicorn + "/signup").text
    response = browser.post(
        gunicorn + "/signup",
        data={"email": "worker@example.com", "password": "long enough", "csrf_token": csrf(page)},
        allow_redirects=False,
    )
    assert response.status_code == 302
    for _ in range(12):  # spread over the workers
        assert browser.get(gunicorn + "/settings/profile", allow_redirects=False).status_code == 200
    other = requests.Session()
    page = other.get(gunicorn + "/login").text
    response = other.post(
        gunicorn + "/login",
        data={"email": "worker@example.com", "password": "long enough", "csrf_token": csrf(page)},
        allow_redirects=False,
    )
    assert response.status_code == 302
    statuses = {requests.get(gunicorn + "/healthz").status_code for _ in range(8)}
    assert statuses == {200}
