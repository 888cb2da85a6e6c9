"""Storage on both databases: migrations, health, account rows."""

import peewee
import pytest

from oauth.accounts import users as accounts
from oauth.storage.migrations import migrate, pending, runner
from oauth.storage.models import User


def test_schema_is_fully_migrated_and_init_db_is_idempotent(app, runner_cli):
    db = app.extensions["portcullis.database"]
    assert pending(db) == []
    first = runner_cli.invoke(args=["init-db"])
    second = runner_cli.invoke(args=["init-db"])
    assert first.exit_code == second.exit_code == 0
    assert "up to date" in second.output
    assert "Applied" not in second.output


@pytest.fixture
def runner_cli(app):
    return app.test_cli_runner()


def test_upgrading_an_existing_database_keeps_its_data(make_app):
    app = make_app(AUTO_MIGRATE=False)
    db = app.extensions["portcullis.database"]
    with app.app_context():
        names = [m.name for m in runner(db).status()]
        runner(db).up(target=names[0])  # a database as the first release left it
        db.execute_sql(
            'INSERT INTO "user" (id, email, password_hash, name, phone, picture, app_metadata, '
            "user_metadata, is_admin, email_verified, phone_verified, disabled, session_epoch, "
            "created_at, updated_at) VALUES ('u-1', 'old@example.com', NULL, 'Old', '', '', "
            "'{\"plan\": \"pro\"}', '{}', %s, %s, %s, %s, 0, '2025-01-01 00:00:00', "
            "'2025-01-01 00:00:00')"
            % (
                ("true", "true", "false", "false")
                if not isinstance(db, peewee.SqliteDatabase)
                else (1, 1, 0, 0)
            )
        )
        migrate(db)
        assert pending(db) == []
        assert migrate(db) == []  # idempotent
        user = User.get_by_id("u-1")
        assert user.email == "old@example.com"
        assert user.app_metadata == {"plan": "pro"}
        assert user.is_admin


def test_email_is_unique_case_insensitively(app_context):
    accounts.create_user("Bob@Example.com", "password123")
    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.create_user("bob@example.COM ", "password123")
    assert User.select().count() == 1
    assert User.get().email == "bob@example.com"


def test_passwords_are_argon2id_hashes(app_context):
    user = accounts.create_user("carol@example.com", "s3cret-pass")
    assert user.password_hash.startswith("$argon2id$")
    assert "s3cret-pass" not in user.password_hash
    assert accounts.authenticate("CAROL@example.com", "s3cret-pass").id == user.id
    assert accounts.authenticate("carol@example.com", "wrong-pass") is None
    assert accounts.authenticate("nobody@example.com", "s3cret-pass") is None


def test_metadata_round_trips_as_json(app_context):
    user = accounts.create_user(
        "dave@example.com",
        "password123",
        app_metadata={"roles": ["admin"]},
        user_metadata={"theme": "dark", "n": 1},
    )
    again = User.get_by_id(user.id)
    assert again.app_metadata == {"roles": ["admin"]}
    assert again.user_metadata == {"theme": "dark", "n": 1}
    assert again.created_at is not None and again.last_sign_in_at is None


def test_disabled_users_cannot_authenticate(app_context):
    user = accounts.create_user("eve@example.com", "password123")
    User.update(disabled=True).where(User.id == user.id).execute()
    assert accounts.authenticate("eve@example.com", "password123") is None


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["mail"] == {
        "status": "ok",
        "transport": "file",
        "pending": 0,
        "failing": 0,
        "failed": 0,
    }


def test_healthz_reports_a_dead_database(app, client, tmp_path):
    broken = peewee.SqliteDatabase(str(tmp_path / "missing-folder" / "db.sqlite"))
    real = app.extensions["portcullis.database"]
    app.extensions["portcullis.database"] = broken
    try:
        response = client.get("/healthz")
    finally:
        app.extensions["portcullis.database"] = real
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"


def test_livez_needs_no_database(app, client):
    broken = peewee.SqliteDatabase("/nonexistent-folder/db.sqlite")
    real = app.extensions["portcullis.database"]
    app.extensions["portcullis.database"] = broken
    try:
        response = client.get("/livez")
    finally:
        app.extensions["portcullis.database"] = real
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "ok"
    assert response.mimetype == "text/plain"


def test_start_up_waits_out_a_locked_fresh_sqlite_file(tmp_path):
    """Workers opening a fresh file at once can get 'database is locked' without the busy
    handler being consulted; start-up waits instead of failing (and stopping gunicorn)."""
    import sqlite3
    import threading

    from oauth.storage.db import _check_connection

    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE t (x)")
    release = threading.Timer(0.5, holder.execute, args=("COMMIT",))
    release.start()
    # no busy timeout at all: only the retry loop can get past the lock
    db = peewee.SqliteDatabase(str(path), pragmas={"journal_mode": "wal"}, timeout=0)
    try:
        _check_connection(db, f"sqlite:///{path}")
    finally:
        release.join()
        holder.close()
    assert db.is_closed()


def test_two_apps_in_one_process_keep_their_own_databases(make_app, tmp_path):
    """The models follow the current app: app A never writes into app B's database."""
    first = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}")
    second = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'b.db'}")
    with first.app_context():
        accounts.create_user("only-in-a@example.com", "password123")
    with second.app_context():
        assert accounts.find_by_email("only-in-a@example.com") is None
        accounts.create_user("only-in-b@example.com", "password123")
    with first.app_context():
        assert accounts.find_by_email("only-in-b@example.com") is None
        assert [u.email for u in User.select()] == ["only-in-a@example.com"]
    # Requests too: each app's test client reads its own rows.
    with first.test_request_context():
        assert User.select().count() == 1


def test_models_refuse_to_work_outside_an_application_context(app):
    with pytest.raises(peewee.InterfaceError, match="application context"):
        User.select().count()


def test_a_new_sqlite_database_is_private_to_its_owner(make_app, tmp_path):
    """It holds the private signing keys: 0600, and so are SQLite's -wal and -shm files."""
    path = tmp_path / "private.db"
    app = make_app(DATABASE_URL=f"sqlite:///{path}")
    with app.test_request_context():
        User.select().count()  # opens the WAL
        for file in (path, path.with_name("private.db-wal"), path.with_name("private.db-shm")):
            if file.exists():
                assert file.stat().st_mode & 0o777 == 0o600, file
    assert path.exists()
