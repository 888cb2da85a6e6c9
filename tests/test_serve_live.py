"""``portcullis-serve`` (oauth/serve.py): the README's production server, granian's WSGI
interface, with several workers over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from oauth.serve import parse_args
from tests.live import ROOT, environment, flask_command, free_port, serve, wait_until_healthy

API = "https://api.serve.example"


def _m2m_client(database_url, folder) -> tuple[str, str]:
    flask_command(
        database_url, folder, "apis", "create", API, "--name", "Serve API", "--scope", "read"
    )
    created = flask_command(
        database_url, folder, "clients", "create", "--name", "machine",
        "--grant-type", "client_credentials", "--json",
    ).stdout  # fmt: skip
    client = json.loads(created)
    flask_command(database_url, folder, "apis", "grant", client["client_id"], API)
    return client["client_id"], client["client_secret"]


def _tokens_counted(base: str) -> float:
    text = requests.get(base + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("portcullis_tokens_issued_total{") and "client_credentials" in line
    )


def test_workers_serve_tokens_and_metrics_add_up(database_url, tmp_path):
    client_id, secret = _m2m_client(database_url, tmp_path)
    with serve(database_url, tmp_path, workers=2, server="portcullis-serve") as base:
        http = requests.Session()  # one kept-alive connection, as clients do
        for _ in range(40):
            response = http.post(
                base + "/oauth/token", data={"grant_type": "client_credentials", "audience": API},
                auth=(client_id, secret), timeout=10,
            )  # fmt: skip
            assert response.status_code == 200, response.text
            assert response.json()["token_type"] == "Bearer"
        fresh = requests.Session()  # new connections: spread over both workers
        for _ in range(20):
            assert fresh.get(base + "/livez", headers={"Connection": "close"}).status_code == 200
        assert _tokens_counted(base) == 40  # every worker's count, wherever /metrics ran


def test_it_stops_on_sigterm_and_removes_its_metrics_folder(database_url, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = environment(database_url, tmp_path, ISSUER="http://127.0.0.1", LOG_FORMAT="json")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["TMPDIR"] = str(temp)
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "oauth.serve", "--workers", "2", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", process, log_path)
            assert [p.name for p in temp.iterdir() if p.name.startswith("portcullis-metrics-")]
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    assert not [p for p in temp.iterdir() if p.name.startswith("portcullis-metrics-")]
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    assert lines and all(json.loads(line) for line in lines)  # granian's lines are JSON too


def test_a_named_metrics_folder_is_emptied_first(database_url, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_12345.db").write_bytes(b"stale")
    env_before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    try:
        with serve(database_url, tmp_path, workers=1, server="portcullis-serve") as base:
            assert requests.get(base + "/livez", timeout=10).status_code == 200
            assert not (folder / "counter_12345.db").exists()
    finally:
        if env_before is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = env_before


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--threads", "0"], ["--port", "-1"]])
def test_bad_arguments_stop_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2
    assert "must be at least" in capsys.readouterr().err
