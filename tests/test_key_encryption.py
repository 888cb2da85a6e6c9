"""Private signing keys encrypted at rest (issue 9 item 12), on real SQLite and PostgreSQL:
no key material in the rows (nor in the SQLite files), KEK rotation end to end, clear
start-up errors for a wrong KEK, and the upgrade of databases that hold plaintext keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import peewee
import pytest

from oauth.security import KeyRing, envelope_kek_id
from oauth.storage.migrations import migrate, pending, runner
from oauth.storage.models import SigningKey
from oauth.tokens import jose as jwt
from oauth.tokens import key_encryption, keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NEW_KEK = "new-kek-" + "n" * 40
OTHER_KEK = "other-kek-" + "o" * 40
MIGRATION = "0007_encrypt_signing_keys"


def claims() -> dict:
    return {"iss": "https://issuer.example", "sub": "user-1", "exp": int(time.time()) + 300}


def stored_rows(app) -> dict[str, str]:
    """kid -> private_pem exactly as the database holds it (raw SQL, no model code)."""
    db = app.extensions["portcullis.database"]
    with app.app_context():
        cursor = db.execute_sql("SELECT kid, private_pem FROM signing_key")
        return dict(cursor.fetchall())


def pem_bodies(app) -> list[str]:
    """The base64 lines of every private key, decrypted through the service."""
    with app.app_context():
        pems = [key_encryption.open_private_key(k) for k in SigningKey.select()]
    return [line for pem in pems if pem for line in pem.splitlines() if "-----" not in line]


def kek_id(secret: str) -> str:
    return KeyRing([secret]).current_id


def current_kid(app) -> str:
    with app.app_context():
        return keys.signing_key().kid


# -- nothing to read at rest --------------------------------------------------------------------


def test_rows_hold_no_private_key_material(make_app, database_url):
    app = make_app()
    with app.app_context():
        keys.add_key("RS256")
        keys.rotate()
        keys.add_key("ES256")
    rows = stored_rows(app)
    assert len(rows) == 5  # two first keys (ES256, RS256), both rotated, one standby
    bodies = pem_bodies(app)
    assert len(bodies) > 3
    secret_id = kek_id(app.config["SECRET_KEY"])
    for stored in rows.values():
        assert stored.startswith(f"kek1.{secret_id}.")
        assert "PRIVATE" not in stored and "-----" not in stored
        assert not any(body in stored for body in bodies)
    if database_url.startswith("sqlite"):
        # Not in the file at all, nor in its write-ahead log.
        path = Path(app.extensions["portcullis.database"].database)
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())
        assert b"PRIVATE KEY" not in raw
        assert not any(body.encode() in raw for body in bodies)


def test_tokens_sign_and_verify_decrypting_once_per_key(make_app, monkeypatch):
    opened = []
    real_decrypt = KeyRing.decrypt

    def counting_decrypt(self, stored, *, kid, alg):
        opened.append(kid)
        return real_decrypt(self, stored, kid=kid, alg=alg)

    monkeypatch.setattr(KeyRing, "decrypt", counting_decrypt)
    app = make_app(KEYS_REFRESH_SECONDS=0)  # a cache refresh before every token
    with app.app_context():
        kids = sorted(k.kid for k in keys.current_keys())  # one of each alg
        tokens = [keys.sign_jwt(claims(), alg=alg) for _ in range(25) for alg in ("ES256", "RS256")]
        assert all(keys.verify_jwt(token)["sub"] == "user-1" for token in tokens)
        assert sorted(k["kid"] for k in keys.public_jwks()["keys"]) == kids
    assert sorted(opened) == kids, "decrypted once, when the cache first met the key"


def test_rows_cannot_be_swapped(make_app, capsys):
    app = make_app()
    with app.app_context():
        standby = keys.add_key().kid
        current = keys.signing_key().kid
        rows = stored_rows(app)
        for kid, other in ((current, standby), (standby, current)):
            SigningKey.update(private_pem=rows[other]).where(SigningKey.kid == kid).execute()
    with pytest.raises(SystemExit) as stopped:
        make_app()
    assert stopped.value.code == 3
    err = capsys.readouterr().err.strip()
    assert "altered or copied from another key" in err and "Traceback" not in err


# -- wrong or missing KEK -----------------------------------------------------------------------


def test_changed_secret_key_stops_startup_naming_the_setting(make_app, capsys):
    app = make_app()
    before = stored_rows(app)
    kid = current_kid(app)
    with pytest.raises(SystemExit) as stopped:
        make_app(SECRET_KEY="another-secret-key-" + "x" * 30)
    assert stopped.value.code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("portcullis: configuration error: PORTCULLIS_KEY_ENCRYPTION_KEY")
    assert "PORTCULLIS_SECRET_KEY changed" in err and kid in err
    assert kek_id(app.config["SECRET_KEY"]) in err
    assert stored_rows(app) == before, "no key replaced, none added, none rewritten"


def test_wrong_explicit_kek_stops_startup(make_app, capsys):
    app = make_app(KEY_ENCRYPTION_KEY=NEW_KEK)
    assert set(map(envelope_kek_id, stored_rows(app).values())) == {kek_id(NEW_KEK)}
    before = stored_rows(app)
    for wrong in (OTHER_KEK, None):  # another KEK; none at all (the secret key's)
        with pytest.raises(SystemExit):
            make_app(KEY_ENCRYPTION_KEY=wrong)
        err = capsys.readouterr().err.strip()
        assert "PORTCULLIS_KEY_ENCRYPTION_KEY" in err and "not configured" in err
        assert kek_id(NEW_KEK) in err and "Traceback" not in err
    assert stored_rows(app) == before


def test_wrong_kek_is_one_line_from_the_real_flask_command(make_app, database_url, tmp_path):
    app = make_app()
    kid = current_kid(app)
    with app.app_context():
        kids = [k.kid for k in keys.current_keys()]
    app.extensions["portcullis.database"].close_all()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")},
        "PORTCULLIS_DATABASE_URL": database_url,
        "PORTCULLIS_INSTANCE_PATH": str(tmp_path / "other-instance"),  # another secret key
        "FLASK_APP": "app:create_app",
    }
    done = subprocess.run(
        [sys.executable, "-m", "flask", "keys", "list"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and kid not in done.stdout
    [line] = [line for line in done.stderr.splitlines() if "configuration error" in line]
    assert "PORTCULLIS_KEY_ENCRYPTION_KEY" in line and any(k in line for k in kids)
    env["PORTCULLIS_SECRET_KEY"] = app.config["SECRET_KEY"]
    listed = subprocess.run(
        [sys.executable, "-m", "flask", "keys", "list", "--json"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    rows = {row["kid"]: row for row in json.loads(listed.stdout)}
    assert sorted(rows) == sorted(kids)
    assert rows[kid]["encryption"] == kek_id(app.config["SECRET_KEY"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f" {NEW_KEK} , {OTHER_KEK},{NEW_KEK}, ", [NEW_KEK, OTHER_KEK]),
        ([NEW_KEK, "short-old-one"], [NEW_KEK, "short-old-one"]),
        (" , ", None),
    ],
)
def test_kek_setting_forms(make_app, value, expected):
    assert make_app(KEY_ENCRYPTION_KEY=value).config["KEY_ENCRYPTION_KEY"] == expected


def test_kek_setting_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("PORTCULLIS_KEY_ENCRYPTION_KEY", f"{NEW_KEK},{OTHER_KEK}")
    app = make_app()
    assert app.config["KEY_ENCRYPTION_KEY"] == [NEW_KEK, OTHER_KEK]
    assert set(map(envelope_kek_id, stored_rows(app).values())) == {kek_id(NEW_KEK)}


@pytest.mark.parametrize("value", ["too-short", ["short", NEW_KEK], 42, {"a": 1}])
def test_bad_kek_setting_is_a_config_error(make_app, capsys, value):
    with pytest.raises(SystemExit):
        make_app(KEY_ENCRYPTION_KEY=value)
    err = capsys.readouterr().err
    assert "PORTCULLIS_KEY_ENCRYPTION_KEY" in err and "Traceback" not in err


# -- rotation -----------------------------------------------------------------------------------


def test_kek_rotation_end_to_end(make_app):
    default = make_app()
    secret = default.config["SECRET_KEY"]
    with default.app_context():
        keys.add_key("RS256")
        old_token = keys.sign_jwt(claims())
    kids = set(stored_rows(default))

    # 1. New KEK first, the old one (here: the secret key the default derived from) second.
    both = make_app(KEY_ENCRYPTION_KEY=f"{NEW_KEK},{secret}")
    with both.app_context():
        assert keys.verify_jwt(old_token)["sub"] == "user-1"
        added = keys.add_key().kid
    assert envelope_kek_id(stored_rows(both)[added]) == kek_id(NEW_KEK)

    # 2. flask keys rewrap: everything under the new KEK.
    result = both.test_cli_runner().invoke(args=["keys", "rewrap"])
    assert result.exit_code == 0, result.output
    assert (
        "Re-encrypted 4 signing keys" in result.output and "3 were under another" in result.output
    )
    assert kek_id(NEW_KEK) in result.output
    rows = stored_rows(both)
    assert set(rows) == kids | {added}
    assert {envelope_kek_id(stored) for stored in rows.values()} == {kek_id(NEW_KEK)}
    listed = both.test_cli_runner().invoke(args=["keys", "list"])
    assert listed.output.count(f"kek {kek_id(NEW_KEK)}") == 4

    # 3. The old KEK is gone: still every key opens, old tokens verify, new ones are signed.
    only_new = make_app(KEY_ENCRYPTION_KEY=NEW_KEK)
    with only_new.app_context():
        assert keys.verify_jwt(old_token)["sub"] == "user-1"
        keys.rotate("RS256")  # the standby RS256 key signs now
        fresh = keys.sign_jwt(claims(), alg="RS256")
        assert jwt.unverified_header(fresh)["alg"] == "RS256"
        assert keys.verify_jwt(fresh)["sub"] == "user-1"
    with pytest.raises(SystemExit):
        make_app()  # the secret key alone no longer opens anything


def test_rewrap_is_all_or_nothing(make_app, caplog):
    app = make_app(KEY_ENCRYPTION_KEY=f"{NEW_KEK},{OTHER_KEK}", KEYS_REFRESH_SECONDS=0)
    stranger_pem, stranger_jwk, stranger = jwt.generate_key("ES256")
    with app.app_context():
        sealed = KeyRing(["a-kek-nobody-configured-" + "z" * 20]).encrypt(
            stranger_pem, kid=stranger, alg="ES256"
        )
        SigningKey.create(
            kid=stranger, alg="ES256", private_pem=sealed, public_jwk=stranger_jwk, state="standby"
        )
        # Published and verifying (public half), though this server cannot sign with it.
        assert stranger in [k["kid"] for k in keys.public_jwks()["keys"]]
    assert f"signing key {stranger} is encrypted under key-encryption key" in caplog.text
    assert "PORTCULLIS_KEY_ENCRYPTION_KEY" in caplog.text
    before = stored_rows(app)
    result = app.test_cli_runner().invoke(args=["keys", "rewrap"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert stranger in result.output and "not configured" in result.output
    assert stored_rows(app) == before
    with app.app_context():
        keys.rotate()  # the stranger is the standby key: it cannot sign here
        with pytest.raises(keys.KeyServiceError, match="does not decrypt"):
            keys.sign_jwt(claims())


# -- databases with plaintext keys --------------------------------------------------------------


def plaintext_row(alg: str = "ES256", state: str = "standby") -> tuple[str, str]:
    """A key as databases before migration 0007 stored it: the PEM itself."""
    private_pem, public_jwk, kid = jwt.generate_key(alg)
    SigningKey.create(kid=kid, alg=alg, private_pem=private_pem, public_jwk=public_jwk, state=state)
    return kid, private_pem


def before_0007(app) -> peewee.Database:
    """This app's database as it was before migration 0007 (the history row removed)."""
    db = app.extensions["portcullis.database"]
    with app.app_context():
        history = runner(db).History
        history.delete().where(history.name == MIGRATION).execute()
        assert pending(db) == [MIGRATION]
    return db


def test_migration_encrypts_plaintext_keys(make_app):
    app = make_app(AUTO_MIGRATE=False)
    db = app.extensions["portcullis.database"]
    with app.app_context():
        if pending(db):  # a fresh SQLite file: the schema of the release before 0007
            runner(db).up(target="0004_hook_stats")
        else:  # PostgreSQL: this session's schema, without 0007
            before_0007(app)
        SigningKey.delete().execute()
        kid, pem = plaintext_row("ES256", state="current")
        standby, standby_pem = plaintext_row("RS256")
        public_jwk = SigningKey.get_by_id(kid).public_jwk
        old_token = jwt.KeyMaterial(kid, "ES256", pem, public_jwk).sign(claims())
        assert MIGRATION in migrate(db)
    rows = stored_rows(app)
    assert {envelope_kek_id(rows[k]) for k in (kid, standby)} == {kek_id(app.config["SECRET_KEY"])}
    assert pem not in rows[kid] and "PRIVATE" not in rows[standby]

    upgraded = make_app()
    with upgraded.app_context():
        assert keys.signing_key().kid == kid
        assert keys.verify_jwt(old_token)["sub"] == "user-1"
        assert key_encryption.open_private_key(SigningKey.get_by_id(standby)) == standby_pem


def test_plaintext_left_behind_still_works_and_is_encrypted_at_startup(make_app, caplog):
    app = make_app(KEYS_REFRESH_SECONDS=0)
    with app.app_context():
        kid, pem = plaintext_row()  # e.g. an old backup restored
    db = before_0007(app)
    assert migrate(db) == [MIGRATION]  # no application context: no KEK, rows left as they are
    assert stored_rows(app)[kid] == pem
    with app.app_context():
        keys.rotate()
        token = keys.sign_jwt(claims())  # signed with the plaintext key
        assert jwt.unverified_header(token)["kid"] == kid
    assert "stored unencrypted" in caplog.text
    assert stored_rows(app)[kid] == pem

    restarted = make_app()
    stored = stored_rows(restarted)[kid]
    assert envelope_kek_id(stored) == kek_id(restarted.config["SECRET_KEY"])
    assert "PRIVATE" not in stored
    with restarted.app_context():
        assert keys.signing_key().kid == kid
        assert keys.verify_jwt(token)["sub"] == "user-1"
        assert keys.verify_jwt(keys.sign_jwt(claims()))["sub"] == "user-1"


def test_rewrap_encrypts_plaintext_and_erased_keys_stay_erased(make_app):
    app = make_app()
    with app.app_context():
        old = keys.signing_key().kid
        keys.rotate()
        keys.revoke(old)
        kid, _ = plaintext_row()
    result = app.test_cli_runner().invoke(args=["keys", "rewrap"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 4 signing keys" in result.output  # both algs rotated, one erased
    rows = stored_rows(app)
    assert rows[old] == "" and envelope_kek_id(rows[kid]) is not None
    with app.app_context():
        listed = {k.kid: key_encryption.protection(k) for k in keys.list_keys()}
    assert listed[old] is None and listed[kid] == kek_id(app.config["SECRET_KEY"])


def test_a_wrong_kek_writes_nothing_at_startup(make_app):
    app = make_app()
    with app.app_context():
        kid, pem = plaintext_row()
    before = stored_rows(app)
    with pytest.raises(SystemExit):
        make_app(KEY_ENCRYPTION_KEY=OTHER_KEK)
    assert stored_rows(app) == before, "the plaintext key is not sealed under a wrong KEK"
    assert before[kid] == pem
