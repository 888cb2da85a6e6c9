"""Issue 13's "cost grows with work, not with data" and memory bounds: the benchmark's bulk
seeding (``benchmarks/bench_seed.py``) makes real rows the token endpoint still works with,
the per-worker caches stay bounded however many clients call, and a worker serving tokens
does not load what only passkey ceremonies need. Nothing here asserts a timing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from oauth.accounts import passkeys, passwords
from oauth.registry import cache as registry_cache
from oauth.registry.cache import MAX_ENTRIES, RegistryCache
from oauth.storage.db import database, is_sqlite
from oauth.storage.models import Client, ClientGrant, Consent, User
from tests.m2m_helpers import API, cc_token, setup_m2m

ROOT = Path(__file__).resolve().parent.parent


def _bench_module(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the bench_* modules import each other
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_seeding_makes_real_rows_and_tokens_still_work(app, client, monkeypatch):
    bench_seed = _bench_module("bench_seed", monkeypatch)
    client_id, secret = setup_m2m(app)
    with app.app_context():
        before = Client.select().count()
        seeded = bench_seed.seed(1000, API, keep_credentials=3)
        assert (seeded.clients, seeded.users, seeded.consents, seeded.grants) == (
            1000,
            1000,
            1000,
            500,
        )
        assert Client.select().count() == before + 1000
        assert User.select().count() == 1000 and Consent.select().count() == 1000
        assert ClientGrant.select().count() == 1 + 500
        # consents link seeded users to seeded web apps; users sign in with the shared password
        consent = Consent.select().first()
        assert "authorization_code" in consent.client.grant_types
        assert passwords.verify_password(consent.user.password_hash, bench_seed.SEED_PASSWORD)
        assert len(seeded.machine_credentials) == 3
    assert cc_token(client, client_id, secret, audience=API).status_code == 200
    seeded_id, seeded_secret = seeded.machine_credentials[0]
    response = cc_token(client, seeded_id, seeded_secret, audience=API)
    assert response.status_code == 200, response.get_json()
    assert cc_token(client, seeded_id, "wrong", audience=API).status_code == 401


def test_scale_options_are_checked(monkeypatch):
    for name in ("PORTCULLIS_INSTANCE_PATH", "PORTCULLIS_DATABASE_URL", "PORTCULLIS_ISSUER"):
        monkeypatch.setenv(name, "set by the test")
    run = _bench_module("run", monkeypatch)
    assert run.parse_args(["--scale", "all"]).scale == ["data", "rss", "instances"]
    assert run.parse_args(["--scale", "rss,data"]).scale == ["data", "rss"]
    assert run.parse_args([]).scale is None
    for bad in (["--scale", "memory"], ["--scale", "data", "--seed-rows", "1"]):
        with pytest.raises(SystemExit):
            run.parse_args(bad)


def test_registry_cache_stays_bounded_and_keeps_live_entries(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(registry_cache.time, "monotonic", lambda: clock[0])
    cache = RegistryCache(5)
    for i in range(MAX_ENTRIES - 1):
        cache.get(("client", f"old-{i}"), lambda: "old")
    clock[0] += 10  # every entry so far has expired
    cache.get(("client", "live"), lambda: "live")
    assert len(cache) == MAX_ENTRIES
    cache.get(("client", "next"), lambda: "next")  # full: the expired entries go first
    assert len(cache) == 2
    assert cache.get(("client", "live"), lambda: "reloaded") == "live"
    for i in range(3 * MAX_ENTRIES):  # more live clients than fit: never above the bound
        cache.get(("client", f"new-{i}"), lambda: "new")
        assert len(cache) <= MAX_ENTRIES


def test_sqlite_page_cache_per_connection_is_small(app):
    """SQLite's page cache is private memory of every pooled connection, and a token
    workload fills it with the audit rows it appends: it must stay at a few MB."""
    with app.app_context():
        if not is_sqlite():
            pytest.skip("SQLite only")
        (size,) = database.execute_sql("PRAGMA cache_size").fetchone()
        kib = -size if size < 0 else size * 4  # negative: KiB; positive: pages (4 KiB here)
        assert 0 < kib <= 4096


def test_a_worker_serving_tokens_loads_no_code_it_does_not_use(tmp_path):
    """A worker that issued a token and drew a sign-in page has not loaded what only rare
    pages need (issue 13's memory target): py_webauthn with pyOpenSSL (the first passkey
    ceremony loads them), segno (the TOTP enrolment's QR code), nor built the management
    API's pydantic validators (each model builds its own on first use)."""
    script = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
os.environ["PORTCULLIS_INSTANCE_PATH"] = {str(tmp_path)!r}
os.environ["PORTCULLIS_DATABASE_URL"] = "sqlite:///{tmp_path}/p.db"
from app import create_app
from oauth.api import schemas
from tests.m2m_helpers import API, cc_token, setup_m2m
app = create_app()
client_id, secret = setup_m2m(app)
assert cc_token(app.test_client(), client_id, secret, audience=API).status_code == 200
assert app.test_client().get("/login").status_code == 200
models = [m for m in vars(schemas).values() if isinstance(m, type) and issubclass(m, schemas.BaseModel)]
built = sorted(m.__name__ for m in models if m.__pydantic_complete__ and m is not schemas.BaseModel)
print(sorted(m for m in ("webauthn", "OpenSSL", "segno") if m in sys.modules), len(models), built)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    loaded, models, built = done.stdout.strip().splitlines()[-1].split(" ", 2)
    assert (loaded, built) == ("[]", "[]")
    assert int(models) > 20  # the check saw the API's models


def test_passkey_code_loads_webauthn_on_first_use():
    assert "usb" in passkeys.lib.transports
    assert passkeys.lib.WebAuthnException.__name__ == "WebAuthnException"
