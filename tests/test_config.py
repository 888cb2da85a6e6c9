"""Configuration layering and start-up failures."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app

ROOT = Path(__file__).resolve().parent.parent


def test_defaults(app):
    assert app.config["ISSUER"] == "http://127.0.0.1:5000"
    assert app.config["ACCESS_TOKEN_TTL"] == 3600
    assert app.config["AUTHORIZATION_TTL"] == 600
    assert app.config["REFRESH_TOKEN_REUSE_INTERVAL"] == 10
    assert app.config["DEFAULT_SCOPE"] == "email"
    assert app.config["DEFAULT_AUDIENCE"] == "authenticated"
    assert app.config["SIGNING_ALG"] == "ES256"
    assert app.config["ALLOW_SIGNUP"] is True
    assert app.config["ALLOW_DYNAMIC_REGISTRATION"] is False
    assert app.config["DISABLED_PLUGINS"] == []


def test_layering_instance_file_then_environment_then_test_config(
    tmp_path, monkeypatch, database_url
):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text(
        'ISSUER = "https://from-file.example"\nACCESS_TOKEN_TTL = 100\nDEFAULT_SCOPE = "openid"\n'
    )
    monkeypatch.setenv("PORTCULLIS_ACCESS_TOKEN_TTL", "200")
    monkeypatch.setenv("PORTCULLIS_DEFAULT_SCOPE", "profile")
    monkeypatch.setenv("PORTCULLIS_DISABLED_PLUGINS", '["noisy"]')
    monkeypatch.setenv("PORTCULLIS_ALLOW_SIGNUP", "false")
    app = create_app({"DATABASE_URL": database_url, "DEFAULT_SCOPE": "phone"})
    try:
        assert app.config["ISSUER"] == "https://from-file.example"  # file beats default
        assert app.config["ACCESS_TOKEN_TTL"] == 200  # environment beats file
        assert app.config["DEFAULT_SCOPE"] == "phone"  # test_config beats environment
        assert app.config["DISABLED_PLUGINS"] == ["noisy"]
        assert app.config["ALLOW_SIGNUP"] is False
        assert app.config["SESSION_COOKIE_SECURE"] is True  # https issuer
    finally:
        _close(app)


def _close(app):
    db = app.extensions["portcullis.database"]
    getattr(db, "close_all", db.close)()


def test_secret_key_is_generated_once_with_private_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = create_app({"DATABASE_URL": url})
    second = create_app({"DATABASE_URL": url})
    key_file = tmp_path / "instance" / "secret_key"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first.config["SECRET_KEY"]) >= 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_secret_key_from_environment_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTCULLIS_SECRET_KEY", "from-env-" + "x" * 40)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"})
    assert app.config["SECRET_KEY"] == "from-env-" + "x" * 40
    assert not (tmp_path / "instance" / "secret_key").exists()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "PORTCULLIS_DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "PORTCULLIS_DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:////no/such/folder/db.sqlite"}, "PORTCULLIS_DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nope"}, "PORTCULLIS_DATABASE_URL"),
        ({"ISSUER": "not a url"}, "PORTCULLIS_ISSUER"),
        ({"ACCESS_TOKEN_TTL": "soon"}, "PORTCULLIS_ACCESS_TOKEN_TTL"),
        ({"SIGNING_ALG": "HS256"}, "PORTCULLIS_SIGNING_ALG"),
    ],
)
def test_bad_setting_stops_with_one_line(overrides, named, tmp_path, capsys):
    config = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", **overrides}
    with pytest.raises(SystemExit) as exit_info:
        create_app(config)
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert named in err


def test_unwritable_instance_folder_is_reported(tmp_path, monkeypatch, capsys):
    if os.geteuid() == 0:
        target = "/proc/portcullis-instance"  # even root cannot create folders in /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "instance")
    monkeypatch.setenv("PORTCULLIS_INSTANCE_PATH", target)
    with pytest.raises(SystemExit):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"})
    assert "instance folder" in capsys.readouterr().err


def test_cli_reports_bad_setting_without_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env.update(
        PORTCULLIS_INSTANCE_PATH=str(tmp_path / "instance"),
        PORTCULLIS_DATABASE_URL="oracle://scott@tiger/db",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "users", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "portcullis: configuration error: PORTCULLIS_DATABASE_URL: unsupported scheme 'oracle' "
        "(use sqlite:///PATH or postgresql://USER@HOST/DB)"
    ]


@pytest.mark.parametrize(
    ("word", "expected"), [("no", False), ("YES", True), ("0", False), ("1", True)]
)
def test_boolean_words_from_the_environment(make_app, monkeypatch, word, expected):
    monkeypatch.setenv("PORTCULLIS_ALLOW_SIGNUP", word)
    monkeypatch.setenv("PORTCULLIS_AUTO_MIGRATE", "yes")
    app = make_app()
    assert app.config["ALLOW_SIGNUP"] is expected
    assert app.config["AUTO_MIGRATE"] is True
    assert (app.test_client().get("/signup").status_code == 404) is not expected


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "PORTCULLIS_ALLOW_SIGNUP",
            "maybe",
            "PORTCULLIS_ALLOW_SIGNUP: expected true/false/1/0/yes/no",
        ),
        ("PORTCULLIS_HTTP_HOOK_TIMEOUT", "soon", "PORTCULLIS_HTTP_HOOK_TIMEOUT: expected a number"),
        (
            "PORTCULLIS_KEYS_REFRESH_SECONDS",
            "[3]",
            "PORTCULLIS_KEYS_REFRESH_SECONDS: expected a number",
        ),
    ],
)
def test_bad_booleans_and_numbers_stop_start_up(
    make_app, monkeypatch, capsys, variable, value, message
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        make_app()
    assert stopped.value.code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_numbers_from_the_environment_are_numbers(make_app, monkeypatch):
    monkeypatch.setenv("PORTCULLIS_HTTP_HOOK_TIMEOUT", "2.5")
    monkeypatch.setenv("PORTCULLIS_REGISTRY_CACHE_SECONDS", "0")
    app = make_app()
    assert app.config["HTTP_HOOK_TIMEOUT"] == 2.5 and app.config["REGISTRY_CACHE_SECONDS"] == 0


def test_an_unknown_variable_is_a_warning_naming_the_closest_setting(make_app, monkeypatch, caplog):
    monkeypatch.setenv("PORTCULLIS_ACCESS_TOKEN_TTLS", "60")
    monkeypatch.setenv("PORTCULLIS_ZZZ_NOTHING_LIKE_IT", "1")
    with caplog.at_level("WARNING", logger="oauth.config"):
        make_app()
    assert (
        "PORTCULLIS_ACCESS_TOKEN_TTLS is ignored (did you mean PORTCULLIS_ACCESS_TOKEN_TTL?)"
        in caplog.text
    )
    assert "PORTCULLIS_ZZZ_NOTHING_LIKE_IT is ignored" in caplog.text
