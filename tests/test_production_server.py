"""gunicorn with several workers sharing one database, over real HTTP."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(database_url, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env.update(
        PORTCULLIS_DATABASE_URL=database_url,
        PORTCULLIS_INSTANCE_PATH=str(tmp_path / "instance"),
        PORTCULLIS_ISSUER=f"http://127.0.0.1:{port}",
        PORTCULLIS_ARGON2_MEMORY_COST="1024",
        PORTCULLIS_ARGON2_TIME_COST="1",
    )
    with open(tmp_path / "gunicorn.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "app:create_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_healthy(base, process, tmp_path / "gunicorn.log")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


def wait_until_healthy(base: str, process, log_path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(base + "/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("gunicorn did not start:\n" + log_path.read_text())
        time.sleep(0.2)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


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
