"""Load benchmark of the client-credentials token endpoint (``make bench``).

Runs the production server (gunicorn, 2 sync workers) on a throw-away instance folder and
database, loads it from a separate process with ``wrk`` -- first ``POST /oauth/token``
(grant_type=client_credentials), then the trivial ``GET /livez`` of the same server as the
baseline -- prints requests/s, p50/p99 latency, errors and the token/baseline ratio, and
records them in ``benchmarks/RESULTS.md`` (date, machine, commit). ``--profile`` then times
the token endpoint in-process (``app.test_client()``, no HTTP server): plain, with light timers
around its parts (database calls, peewee, JWT signing, Authlib, rate limiter, Flask hooks), and
under cProfile, and adds a "where the time goes" summary.

    .venv/bin/python benchmarks/run.py [--seconds 10] [--connections 16] [--no-record]
    .venv/bin/python benchmarks/run.py --database-url postgresql://postgres@127.0.0.1:5432/postgres --profile
    .venv/bin/python benchmarks/run.py --profile-only [--profile-requests 200]  # no wrk, no gunicorn

This is a measurement, not a test: nothing here (nor in tests/) asserts a timing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import datetime as dt
import importlib
import inspect
import io
import os
import platform
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench_* modules next to this file
import bench_endpoints as endpoints  # needs the path above
import bench_reference as reference  # needs the path above
import bench_scale as scale  # needs the path above
from bench_servers import (  # needs the path above
    PYTHON_SERVERS,
    Process,
    PythonServer,
    ensure_node,
    node_versions,
    package_version,
    start_node,
    start_python,
)
from bench_wrk import (  # needs the path above
    TOKEN_LUA,
    BenchError,
    CpuMeter,
    Result,
    cpu_busy_now,
    free_port,
    log,
    lua_string,
    parse_wrk,
    run_wrk,
    warn,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
API_IDENTIFIER = "https://api.bench.example"
API_SCOPES = ["read:things", "write:things"]
TOKEN_PATH = "/oauth/token"
BASELINE_PATH = "/livez"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKERS = 2
NODE_TOKEN_PATH = "/token"
REFERENCE = (
    "For reference (issue): a certified Node.js provider serves about 4,000 client-credentials "
    "tokens/s on this class of machine, a Flask hello-world route about 5,500 req/s."
)
RESULTS_HEADER = f"""# Benchmark results

Recorded by `benchmarks/run.py` (`make bench`; see `benchmarks/README.md`), newest first.
{REFERENCE}

<!-- new results go below this line -->
"""
MARKER = "<!-- new results go below this line -->"


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package when it is missing (as root or with sudo)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        command = ["apt-get", "install", "-y", "wrk"]
    elif (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    ):
        command = ["sudo", "-n", "apt-get", "install", "-y", "wrk"]
    else:
        raise BenchError(
            "wrk is not installed and this user cannot install it (not root, no password-less "
            "sudo). Install it with `sudo apt-get install wrk` (Debian/Ubuntu) and run again."
        )
    log("wrk is missing: " + " ".join(command))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(command, env=env).returncode != 0:
        # A fresh container may have no package lists yet.
        subprocess.run(command[:-3] + ["update"], env=env)
        subprocess.run(command, env=env)
    found = shutil.which("wrk")
    if not found:
        raise BenchError(
            "could not install wrk (apt-get install -y wrk failed); install it and run again"
        )
    return found


def git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def machine_info() -> dict[str, str]:
    cpu = "unknown CPU"
    memory = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    try:
        banner = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
        wrk_version = banner[1] if len(banner) > 1 else "?"
    except OSError:
        wrk_version = "?"
    return {
        "nproc": nproc,
        "cpu": cpu,
        "memory": memory,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gunicorn": package_version("gunicorn") or "?",
        "wrk": wrk_version,
    }


# --- database ----------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    url: str
    admin_url: str | None = None
    name: str | None = None

    def drop(self) -> None:
        if self.kind != "postgresql" or not self.name:
            return
        import psycopg

        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            log(f"dropped PostgreSQL database {self.name}")
        except psycopg.Error as error:
            print(f"bench: warning: could not drop database {self.name}: {error}", file=sys.stderr)
        self.name = None


def make_database(args, workdir: Path, suffix: str = "") -> Database:
    if not args.database_url:
        path = workdir / "instance" / "portcullis.db"
        return Database("sqlite", f"sqlite:///{path}")  # path is absolute: sqlite:////tmp/...
    parts = urlsplit(args.database_url)
    if parts.scheme.split("+")[0] not in ("postgres", "postgresql"):
        raise BenchError(
            f"--database-url: only postgresql://... is supported (SQLite is the default), got {parts.scheme!r}"
        )
    import psycopg

    name = f"portcullis_bench_{os.getpid()}{suffix}"
    admin_url = args.pg_admin_url
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        raise BenchError(
            f"cannot create database {name} via {admin_url}: {error}".strip()
        ) from None
    log(f"created PostgreSQL database {name}")
    # The server named by --database-url, with our own database instead of the one in the URL.
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    return Database("postgresql", url, admin_url=admin_url, name=name)


# --- the instance: client, API, grant ----------------------------------------------------


def server_environment(
    instance: Path, database_url: str, issuer: str, plugins: Path | None = None
) -> dict[str, str]:
    """This process's environment without developer PORTCULLIS_* settings, plus ours.

    ``plugins``: the plugin folder (``PORTCULLIS_PLUGINS_DIR``); by default the benchmark's
    own folder holding its one ``customize_access_token`` plugin, next to the instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    if plugins is None:
        plugins = reference.write_plugin(instance.parent / "plugins")
    env.update(
        PORTCULLIS_INSTANCE_PATH=str(instance),
        PORTCULLIS_DATABASE_URL=database_url,
        PORTCULLIS_ISSUER=issuer,
        PORTCULLIS_PLUGINS_DIR=str(plugins),
    )
    return env


def use_environment(env: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.startswith("PORTCULLIS_")]:
        del os.environ[name]
    os.environ.update({k: v for k, v in env.items() if k.startswith("PORTCULLIS_")})
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def close_app_database(app) -> None:
    spool = app.extensions.get("portcullis.audit_spool")
    if spool is not None:  # its events in the database before the database goes away
        spool.close()
    db = app.extensions.get("portcullis.database")
    if db is not None:
        getattr(db, "close_all", db.close)()


def set_up_instance(prepare=None) -> tuple[str, str]:
    """Migrate, create the confidential client, the API and the grant; returns (client_id, secret).

    ``prepare()``, if given, runs next in the same app context (``--scale`` seeds there)."""
    from app import create_app
    from oauth.registry.apis import create_api
    from oauth.registry.client_grants import grant
    from oauth.registry.clients import create_client

    app = create_app()
    try:
        with app.app_context():
            client, secret = create_client("bench client", [], grant_types=["client_credentials"])
            api = create_api(API_IDENTIFIER, "Bench API", API_SCOPES)
            grant(client, api)
            if prepare is not None:
                prepare()
            return client.client_id, secret
    finally:
        close_app_database(app)


def basic_auth(client_id: str, secret: str) -> str:
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"  # RFC 6749 2.3.1
    return "Basic " + base64.b64encode(pair.encode()).decode()


TOKEN_FORM = {"grant_type": "client_credentials", "audience": API_IDENTIFIER}
# node-oidc-provider names the API with a resource indicator (RFC 8707) and wants the scopes.
NODE_FORM = {"grant_type": "client_credentials", "resource": API_IDENTIFIER}


# --- the server --------------------------------------------------------------------------


def check_endpoints(base: str, auth: str) -> None:
    """One real token request and one baseline request, before any load."""
    response = requests.post(
        base + TOKEN_PATH, data=TOKEN_FORM, headers={"Authorization": auth}, timeout=10
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        raise BenchError(
            f"the token endpoint did not issue a token: HTTP {response.status_code}\n{response.text}"
        )
    log(f"token endpoint OK: {body.get('token_type')} token, scope {body.get('scope')!r}")
    response = requests.get(base + BASELINE_PATH, timeout=10)
    if response.status_code != 200 or response.text != "ok":
        raise BenchError(
            f"the baseline {BASELINE_PATH} did not answer 200 ok: HTTP {response.status_code}\n{response.text}"
        )


# --- wrk ---------------------------------------------------------------------------------


def load(wrk: str, args, server: Process, path: str, script: Path | None) -> Result:
    url = server.base + path
    if args.warmup > 0:
        log(f"warm-up {args.warmup}s: {server.name} {path}")
        run_wrk(wrk, args, url, args.warmup, script)
    log(f"measuring {args.seconds}s: {server.name} {path}")
    with CpuMeter(server.process.pid, server.cpu_label) as cpu:
        output = run_wrk(wrk, args, url, args.seconds, script)
    result = parse_wrk(path, output)
    result.cpu, result.server_cpus = cpu.summary, cpu.server_cpus
    result.database_cpus = cpu.database_cpus
    if args.verbose:
        print(result.raw)
    return result


def table(token: Result, baseline: Result) -> str:
    rows = [
        "| route | req/s | p50 | p99 | errors | ratio to baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in (token, baseline):
        ratio = result.rps / baseline.rps if baseline.rps else 0.0
        errors = f"{result.errors}"
        if result.errors:
            errors += f" ({result.socket_errors} socket, {result.non_2xx} non-2xx)"
        rows.append(
            f"| `{'POST' if result is token else 'GET'} {result.route}` | {result.rps:,.0f} | "
            f"{result.p50_ms:.2f} ms | {result.p99_ms:.2f} ms | {errors} of {result.requests:,} | "
            f"{ratio:.2f} |"
        )
    return "\n".join(rows)


def cpu_lines(token: Result, baseline: Result) -> str:
    return (
        f"CPU during the measured runs (100% = one CPU; {os.cpu_count()} CPUs): "
        f"token endpoint: {token.cpu}; baseline: {baseline.cpu}."
    )


# --- profile -----------------------------------------------------------------------------


class WallClock:
    """Exclusive wall-clock time of wrapped calls (a wrapped call's time excludes the wrapped
    calls nested inside it), without a profiler's overhead."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.skipped: list[tuple[str, str]] = []  # (timer, why): targets that were not found
        self._stack: list[float] = []
        self._undo: list = []

    def timed(self, function, label):
        def timed(*args, **kwargs):
            key = label(*args, **kwargs) if callable(label) else label
            self._stack.append(0.0)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                nested = self._stack.pop()
                self.seconds[key] = self.seconds.get(key, 0.0) + elapsed - nested
                self.calls[key] = self.calls.get(key, 0) + 1
                if self._stack:
                    self._stack[-1] += elapsed

        return timed

    def _replace(self, owner: object, name: str, new, had_own: bool, original) -> None:
        def undo() -> None:
            if had_own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)

        self._undo.append(undo)
        setattr(owner, name, new)

    def wrap(self, owner: object, name: str, label) -> None:
        """Replace ``owner.name`` (an instance, class or module attribute) by a timed version.

        A module function is also replaced where another Portcullis module imported it by name
        (``from oauth.tokens.keys import sign_jwt``), so those calls are timed too."""
        had_own = name in getattr(owner, "__dict__", {})
        original = getattr(owner, name)
        if had_own and isinstance(owner, type):
            original = owner.__dict__[name]  # the plain function, not a bound method
        timed = self.timed(original, label)
        self._replace(owner, name, timed, had_own, original)
        if not isinstance(owner, types.ModuleType):
            return
        for module in list(sys.modules.values()):
            module_name = getattr(module, "__name__", None) or ""
            if module is owner or module_name.split(".")[0] not in ("app", "oauth"):
                continue
            for alias, value in list(vars(module).items()):
                if value is original:
                    self._replace(module, alias, timed, True, original)

    def wrap_list(self, functions: list, label) -> None:
        """Replace every function of a list (Flask's hook lists) by a timed version."""
        saved = list(functions)
        functions[:] = [self.timed(f, label(f)) for f in saved]
        self._undo.append(lambda: functions.__setitem__(slice(None), saved))

    def skip(self, title: str, why: str) -> None:
        self.skipped.append((title, why))
        warn(f"profile: not timing {title}: {why}")

    def unwrap(self) -> None:
        while self._undo:
            self._undo.pop()()


def _statement(sql: str, params=None) -> str:  # execute_sql's signature
    match = re.match(
        r'\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b(?:.*?\bFROM)?\s*"?(\w+)"?', sql, re.I | re.S
    )
    if match:
        verb = match.group(1).split()[0].upper()
        return f"database: {verb} {match.group(2)}"
    return "database: " + " ".join(sql.split()[:2])


def _hook_name(kind: str):
    def label(function) -> str:
        inner = getattr(function, "func", function)  # functools.partial
        name = getattr(inner, "__qualname__", repr(inner))
        return f"Flask {kind} hook: {name}"

    return label


# What the profile wraps and looks up is named, not imported: the package is being restructured,
# and a target that moved or was renamed is a warning naming it (that timer or row is skipped),
# never a crash. An owner is "extension:<key>" (``app.extensions[key]``), "module" or
# "module:Attribute.path"; "view:<path>" is the POST view of that URL and "teardown_appcontext"
# the app's teardown functions (by ``__name__``). Prefer stable seams: the database, Authlib's
# server, the plugin host's hook calls, ``oauth.audit.record``, ``oauth.tokens.keys.sign_jwt``.
DATABASE = "extension:portcullis.database"
AUTHORIZATION_SERVER = "extension:portcullis.authorization_server"
PLUGIN_HOST = "extension:portcullis.plugins"


@dataclass(frozen=True)
class Timer:
    owner: str
    name: str  # the attribute replaced by a timed version
    label: object  # the row's label, or a function of the call's arguments returning it

    @property
    def title(self) -> str:
        return f"{self.label!r}" if isinstance(self.label, str) else f"{self.owner} {self.name}"


def timers(app) -> list[Timer]:
    """The timed parts of a client-credentials token request."""
    db = app.extensions.get("portcullis.database")
    pooled = hasattr(db, "close_all")
    alg = app.config.get("SIGNING_ALG") or "?"
    hooks = "plugin hooks"
    return [
        Timer(DATABASE, "connect", f"database: connect ({'from the pool' if pooled else '+ PRAGMAs'})"),
        Timer(DATABASE, "close", f"database: close{' (back to the pool)' if pooled else ''}"),
        Timer(DATABASE, "begin", "database: BEGIN"),
        Timer(DATABASE, "commit", "database: COMMIT"),
        Timer(DATABASE, "rollback", "database: ROLLBACK"),
        Timer(DATABASE, "execute_sql", _statement),
        Timer(DATABASE, "execute", "peewee: compile the query to SQL"),
        Timer("peewee:ModelObjectCursorWrapper", "process_row", "peewee: rows -> model objects"),
        Timer("peewee:ModelCursorWrapper", "process_row", "peewee: rows -> model objects"),
        Timer(AUTHORIZATION_SERVER, "create_oauth2_request", "Authlib: OAuth2Request from the Flask request"),
        Timer(AUTHORIZATION_SERVER, "create_token_response", "grant: Authlib grant logic, claims (create_token_response)"),
        Timer(AUTHORIZATION_SERVER, "handle_response", "Authlib: JSON response"),
        Timer("oauth.protocol.lean_token", "parse_form", "lean lane: parse the form"),
        Timer("oauth.protocol.client_credentials", "check_request", "grant: checks (grant type, API, scopes)"),
        Timer("oauth.protocol.client_credentials", "issue_token", "grant: issue_token (context, claims)"),
        Timer("oauth.storage.models:Client", "check_client_secret", "client secret check (SHA-256, constant time)"),
        Timer("oauth.ratelimit:Throttle", "retry_after", "rate limits: Throttle.retry_after (failures only)"),
        Timer(PLUGIN_HOST, "customize_client_credentials", f"{hooks}: customize_client_credentials"),
        Timer(PLUGIN_HOST, "customize_access_token", f"{hooks}: customize_access_token"),
        Timer("oauth.audit", "record", "audit.record (Python side)"),
        Timer("oauth.audit", "record_soon", "audit.record_soon (the spool append)"),
        Timer("oauth.tokens.keys", "sign_jwt", f"JWT signing (keys.sign_jwt, {alg})"),
    ]  # fmt: skip


def _owner(app, owner: str):
    """The object ``owner`` names (see above), or LookupError saying what is missing."""
    if owner.startswith("extension:"):
        key = owner.removeprefix("extension:")
        if key not in app.extensions:
            raise LookupError(f"app.extensions has no {key!r}")
        return app.extensions[key]
    module_name, _, path = owner.partition(":")
    try:
        found = importlib.import_module(module_name)
    except ImportError as error:
        raise LookupError(f"cannot import {module_name} ({error})") from None
    where = module_name
    for part in filter(None, path.split(".")):
        if not hasattr(found, part):
            raise LookupError(f"{where} has no attribute {part!r}")
        found = getattr(found, part)
        where += (":" if where == module_name else ".") + part
    return found


def _target(app, owner: str, name: str = ""):
    """The function ``name`` of ``owner``, or LookupError naming what is missing."""
    if owner.startswith("view:"):
        path = owner.removeprefix("view:")
        for rule in app.url_map.iter_rules():
            if rule.rule == path and "POST" in (rule.methods or ()):
                return app.view_functions[rule.endpoint]
        raise LookupError(f"the app has no POST view for {path}")
    if owner == "teardown_appcontext":
        for function in app.teardown_appcontext_funcs:
            if getattr(function, "__name__", None) == name:
                return function
        raise LookupError(f"no teardown_appcontext function is named {name!r}")
    found = _owner(app, owner)
    if not hasattr(found, name):
        where = owner.removeprefix("extension:") if owner.startswith("extension:") else owner
        raise LookupError(f"{where} has no attribute {name!r} (moved or renamed?)")
    return getattr(found, name)


def instrument(app) -> WallClock:
    """Time, per request part, what a client-credentials token request does. A part whose
    target is not found is skipped with a warning (``clock.skipped``)."""
    clock = WallClock()
    try:
        for timer in timers(app):
            try:
                owner = _owner(app, timer.owner)
                _target(app, timer.owner, timer.name)
            except LookupError as error:
                clock.skip(timer.title, f"{error}; update timers() in benchmarks/run.py")
                continue
            clock.wrap(owner, timer.name, timer.label)
        for kind, table in (
            ("before_request", app.before_request_funcs),
            ("after_request", app.after_request_funcs),
            ("teardown", app.teardown_request_funcs),
            ("teardown", {None: app.teardown_appcontext_funcs}),
        ):
            for functions in table.values():
                clock.wrap_list(functions, _hook_name(kind))
        clock.wrap(app, "wsgi_app", "the rest: Flask/Werkzeug dispatch, the view")
    except BaseException:
        clock.unwrap()
        raise
    return clock


# Buckets of the wall-clock parts: the first matching test wins.
GROUPS = [
    (
        "database: open + close the connection",
        lambda label: label.startswith(("database: connect", "database: close")),
    ),
    (
        "database: BEGIN / COMMIT",
        lambda label: label.startswith(
            ("database: BEGIN", "database: COMMIT", "database: ROLLBACK")
        ),
    ),
    ("database: executing the statements", lambda label: label.startswith("database:")),
    ("peewee: build SQL + rows -> models", lambda label: label.startswith("peewee:")),
    (
        "rate limits (only failed attempts are looked up)",
        lambda label: label.startswith("rate limits"),
    ),
    ("Flask hooks (CSRF, login, headers, teardown)", lambda label: label.startswith("Flask ")),
    ("JWT signing", lambda label: label.startswith("JWT")),
    (
        "Authlib request/response + secret check",
        lambda label: label.startswith(("Authlib", "client secret")),
    ),
    ("Authlib grant logic, claims", lambda label: label.startswith("grant:")),
    ("audit.record (Python side)", lambda label: label.startswith("audit")),
    ("plugin hooks", lambda label: label.startswith("plugin")),
    ("the rest: Flask/Werkzeug dispatch, the view", lambda label: True),
]


# Inclusive buckets: (label, [(owner, name), ...], see _target); cumulative times of entry
# points, so nested buckets overlap (the database bucket also contains part of client auth).
# The first row is the whole request, the second the lean lane (which answers it).
INCLUSIVE = [
    ("whole request inside the WSGI app", [("oauth.web.instruments:RequestInstruments", "__call__")]),
    ("lean lane of the token endpoint (web/token_lane.py)", [("oauth.web.token_lane:TokenLane", "__call__")]),
    ("lean lane: the answer (protocol/lean_token.answer)", [("oauth.protocol.lean_token", "answer")]),
    ("token view, full endpoint (requests the lane leaves)", [(f"view:{TOKEN_PATH}", "")]),
    (
        "Authlib: OAuth2Request from the Flask request",
        [(AUTHORIZATION_SERVER, "create_oauth2_request")],
    ),
    ("Authlib: token endpoint (create_token_response)", [(AUTHORIZATION_SERVER, "create_token_response")]),
    (
        "client authentication (SELECT client + secret check)",
        [("authlib.oauth2.rfc6749.grants.base:BaseGrant", "authenticate_token_endpoint_client")],
    ),
    (
        "API + client grant lookup (registry cache)",
        [("oauth.registry.apis", "cached_api"), ("oauth.registry.client_grants", "cached_grant")],
    ),
    (
        "plugin hooks (client-credentials + access-token)",
        [(PLUGIN_HOST, "customize_client_credentials"), (PLUGIN_HOST, "customize_access_token")],
    ),
    ("JWT signing (keys.sign_jwt)", [("oauth.tokens.keys", "sign_jwt")]),
    ("audit insert (audit.record)", [("oauth.audit", "record")]),
    ("rate-limit checks", [("oauth.ratelimit:Throttle", "retry_after"), ("oauth.ratelimit:Throttle", "hit")]),
    ("connection close at teardown", [("teardown_appcontext", "_close_connection")]),
]  # fmt: skip


def _code_key(function) -> tuple[str, int, str]:
    """cProfile's key of a Python function: (file, first line, name)."""
    function = inspect.unwrap(getattr(function, "__func__", function))
    code = getattr(function, "__code__", None)
    if code is None:
        raise LookupError(f"{function!r} is not a Python function")
    return code.co_filename, code.co_firstlineno, code.co_name


def inclusive_targets(app) -> tuple[list[tuple[str, list[tuple[str, int, str]]]], list[str]]:
    """INCLUSIVE with cProfile keys; a row none of whose targets is found is left out, with a
    warning (returned too)."""
    rows, missing = [], []
    for label, targets in INCLUSIVE:
        found = []
        for owner, name in targets:
            try:
                found.append(_code_key(_target(app, owner, name)))
            except LookupError as error:
                warn(f"profile: cProfile row {label!r}: {error}")
                missing.append(f"{label}: {error}")
        if found:
            rows.append((label, found))
    return rows, missing


# Exclusive buckets: each profiled function's own time goes to the first matching library.
LIBRARIES = [
    (
        "werkzeug test client (not in production)",
        ("werkzeug/test.py", "flask/testing.py", "benchmarks/run.py"),
    ),
    (
        "database: peewee + driver (sqlite3 / psycopg)",
        ("peewee.py", "playhouse/", "sqlite3", "psycopg"),
    ),
    ("JWT: joserfc + cryptography", ("joserfc/", "cryptography", "_rust")),
    ("Authlib", ("authlib/",)),
    ("limits (rate-limit counters)", ("/limits/",)),
    ("Flask-WTF (CSRF) / WTForms", ("flask_wtf/", "wtforms/")),
    ("Flask-Login", ("flask_login/",)),
    ("pluggy", ("pluggy/",)),
    ("Werkzeug", ("werkzeug/",)),
    ("Flask", ("flask/",)),
    (
        "Jinja / MarkupSafe / itsdangerous / blinker",
        ("jinja2/", "markupsafe", "itsdangerous/", "blinker/"),
    ),
    ("Portcullis code (oauth/, app.py)", ("/oauth/", str(ROOT / "app.py"))),
    ("json", ("json/", "_json")),
    ("logging", ("logging/",)),
]


def _library(key: tuple[str, int, str]) -> str:
    filename, _, name = key
    where = f"{filename} {name}"
    for label, needles in LIBRARIES:
        if any(needle in where for needle in needles):
            return label
    return "other (stdlib, builtins)"


def _cumulative(stats: pstats.Stats, targets: list[tuple[str, int, str]]) -> float:
    return sum(stats.stats[key][3] for key in targets if key in stats.stats)  # type: ignore[attr-defined]


def profile_token_endpoint(
    client_id: str, secret: str, n: int, *, warmup: int = 50
) -> tuple[str, str]:
    """Time and profile ``n`` token requests in-process; returns (printed report, markdown summary)."""
    from app import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": basic_auth(client_id, secret)}
    body = urlencode(TOKEN_FORM)
    content_type = "application/x-www-form-urlencoded"

    def issue(count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            response = client.post(
                TOKEN_PATH, data=body, headers=headers, content_type=content_type
            )
            if response.status_code != 200:
                raise BenchError(
                    f"profile: token request answered {response.status_code}: {response.get_data(as_text=True)}"
                )
        return time.perf_counter() - started

    def baseline(count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            client.get(BASELINE_PATH)
        return time.perf_counter() - started

    try:
        issue(warmup)  # first-request costs (key load, lazy imports) are not what we measure
        baseline(warmup)
        plain = issue(n)
        livez = baseline(n)
        clock = instrument(app)
        try:
            issue(n)
        finally:
            clock.unwrap()
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            issue(n)
        finally:
            profiler.disable()
        inclusive, not_found = inclusive_targets(app)
    finally:
        close_app_database(app)

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(25)
    stats = pstats.Stats(profiler)  # unstripped paths for the buckets
    summary = _wall_clock_lines(clock, n, plain, livez) + _cprofile_lines(
        stats, n, inclusive, not_found
    )
    return out.getvalue(), "\n".join(summary)


def _wall_clock_lines(clock: WallClock, n: int, plain: float, livez: float) -> list[str]:
    ms = 1000 / n
    lines = [
        f"In-process, one thread, no HTTP server (`app.test_client()`), {n} requests each: "
        f"the token endpoint takes **{plain * ms:.2f} ms/request** ({n / plain:,.0f} tokens/s on one "
        f"core), `/livez` {livez * ms:.2f} ms/request.",
        "",
        "Where the time goes: wall clock per token request, grouped (light instrumentation, "
        "no profiler):",
        "",
        "| bucket | ms/request | % |",
        "|---|---:|---:|",
    ]
    wall_total = sum(clock.seconds.values()) or 1e-9
    groups: dict[str, float] = {}
    for label, seconds in clock.seconds.items():
        group = next(name for name, test in GROUPS if test(label))
        groups[group] = groups.get(group, 0.0) + seconds
    for group, seconds in sorted(groups.items(), key=lambda item: -item[1]):
        lines.append(f"| {group} | {seconds * ms:.3f} | {seconds / wall_total * 100:.1f} |")
    lines += [
        f"| **total inside the WSGI app** | **{wall_total * ms:.3f}** | 100 |",
        "",
        "The same, part by part (each row excludes the rows nested in it; parts under 0.2% "
        "are summed in the last row):",
        "",
        "| part | calls/request | ms/request | % |",
        "|---|---:|---:|---:|",
    ]
    small = 0.0
    for label, seconds in sorted(clock.seconds.items(), key=lambda item: -item[1]):
        if seconds / wall_total < 0.002:
            small += seconds
            continue
        lines.append(
            f"| {label} | {clock.calls[label] / n:.1f} | {seconds * ms:.3f} | "
            f"{seconds / wall_total * 100:.1f} |"
        )
    lines += [
        f"| (smaller parts) | | {small * ms:.3f} | {small / wall_total * 100:.1f} |",
        "",
    ]
    if clock.skipped:
        lines += [
            "Not timed (target not found; its time is in the row of the part around it):",
            "",
            *[f"- {title}: {why}" for title, why in clock.skipped],
            "",
        ]
    return lines


def _cprofile_lines(
    stats: pstats.Stats, n: int, inclusive: list, not_found: list[str]
) -> list[str]:
    ms = 1000 / n
    rows = dict(inclusive)
    whole, view = INCLUSIVE[0][0], INCLUSIVE[1][0]
    app_total = (_cumulative(stats, rows[whole]) if whole in rows else 0.0) or 1e-9
    profiled_total = stats.total_tt  # type: ignore[attr-defined]
    lines = [
        f"cProfile ({n} requests, {profiled_total:.2f} s under the profiler, which inflates "
        "Python-heavy code): cumulative time of entry points, % of the request inside the WSGI "
        "app (nested rows overlap):",
        "",
        "| entry point | % | ms/request (profiled) |",
        "|---|---:|---:|",
    ]
    for label, targets in inclusive:
        seconds = _cumulative(stats, targets)
        lines.append(f"| {label} | {seconds / app_total * 100:.1f} | {seconds * ms:.3f} |")
    if whole in rows and view in rows:
        around = app_total - _cumulative(stats, rows[view])
        lines.append(
            f"| instruments, Flask/Werkzeug, extensions around the lane (whole minus lane) | "
            f"{around / app_total * 100:.1f} | {around * ms:.3f} |"
        )
    if not_found:
        lines += ["", "Not found for cProfile: " + "; ".join(not_found) + "."]
    by_library: dict[str, float] = {}
    for key, (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_library[_library(key)] = by_library.get(_library(key), 0.0) + tt
    lines += [
        "",
        "cProfile, own time of every function by library (% of all profiled time, adds up to 100):",
        "",
        "| library | % |",
        "|---|---:|",
    ]
    for label, seconds in sorted(by_library.items(), key=lambda item: -item[1]):
        lines.append(f"| {label} | {seconds / profiled_total * 100:.1f} |")
    return lines


# --- results -----------------------------------------------------------------------------


def section(
    args,
    db: Database,
    info: dict[str, str],
    token: Result,
    baseline: Result,
    profile: str | None,
    comparison: list[str] | None = None,
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    database = (
        "SQLite (WAL) file in a temporary folder"
        if db.kind == "sqlite"
        else "PostgreSQL (own temporary database, peewee connection pool), same machine"
    )
    heading = f"## {now} -- {db.kind}"
    heading += ", against node-oidc-provider" if comparison else ""
    heading += ", with `--profile`" if profile else ""
    heading += f" -- {args.note}" if args.note else ""
    servers = "; ".join(
        f"`{kind}`: " + PythonServer(kind, WORKERS, args.server_threads).describe()
        for kind in args.server
    )
    text = [
        heading,
        "",
        f"- machine: {info['nproc']} CPUs (`nproc`), {info['cpu']}, {info['memory']} RAM, "
        f"{info['kernel']}, Python {info['python']}",
        f"- database: {database}",
        f"- server: {servers}; {WORKERS} workers unless said otherwise, rate limits at their "
        "defaults, "
        + (
            "one `customize_access_token` plugin (one claim)" if not args.no_plugin else "no plugin"
        ),
    ]
    if comparison:
        text.append(
            f"- reference: {info['node']}, one process, in-memory adapter, JWT (ES256) "
            "access tokens with one extra claim (`benchmarks/node-oidc/server.mjs`)"
        )
    text += [
        f"- load: wrk {info['wrk']} `-t{args.threads} -c{args.connections} -d{args.seconds}s --latency` "
        f"after a {args.warmup} s warm-up per run, from a separate process on the same machine: "
        f"wrk and the servers share the {info['nproc']} CPUs",
        f"- CPU busy in the second before the run: {info['busy']} of one CPU",
        f"- commit: {git_commit()}",
        "",
    ]
    if comparison:
        text += [*comparison, "", f"The same server's baseline (`{args.server[0]}`, round 1):", ""]
    text += [
        table(token, baseline),
        "",
        cpu_lines(token, baseline),
        "",
        f"Tokens issued: {token.ok_per_second:,.0f}/s (references at the top of this file).",
    ]
    if profile:
        text += ["", "### Where the time goes (`--profile`)", "", profile]
    return "\n".join(text) + "\n"


def record(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else RESULTS_HEADER
    if MARKER not in current:
        current = current.rstrip("\n") + "\n\n" + MARKER + "\n"
    head, tail = current.split(MARKER, 1)
    RESULTS.write_text(
        head + MARKER + "\n\n" + text + ("\n" + tail.lstrip("\n") if tail.strip() else "")
    )
    log(f"recorded in {RESULTS.relative_to(ROOT)}")


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load benchmark of the client-credentials token endpoint (wrk), optionally "
        "side by side with node-oidc-provider (--reference node)."
    )
    parser.add_argument("--seconds", type=int, default=10, help="measured wrk run per route (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument(
        "--threads", type=int, help="wrk threads (2; 1 with --reference, as in issue 13)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="warm-up run per route, seconds (2; 0: none)"
    )
    parser.add_argument(
        "--server",
        action="append",
        choices=sorted(PYTHON_SERVERS),
        help="the Python server running Portcullis: granian (portcullis-serve, the production "
        "command, the default), sync (gunicorn sync workers) or gthread (gunicorn threads); "
        "repeat it to measure several in one run (with --reference, each against node)",
    )
    parser.add_argument(
        "--server-threads",
        type=int,
        help="threads per worker: gthread's --threads (4), portcullis-serve's --threads (1); "
        "sync ignores it",
    )
    parser.add_argument(
        "--reference",
        choices=["node"],
        help="node: also run node-oidc-provider (benchmarks/node-oidc) and measure A/B/A/B "
        "against it, printing the ratios",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of A/B/A/B with --reference (2)"
    )
    parser.add_argument(
        "--node-warmup",
        type=int,
        default=10,
        help="with --reference: node-oidc-provider's one warm-up before round 1, seconds (10)",
    )
    parser.add_argument(
        "--no-plugin",
        action="store_true",
        help="load no plugin (default: one customize_access_token plugin adding one claim)",
    )
    parser.add_argument("--note", help="added to the heading of the section in RESULTS.md")
    parser.add_argument(
        "--database-url",
        help="postgresql://USER@HOST:PORT/DB: benchmark on this PostgreSQL server, in a database "
        "the script creates (portcullis_bench_<pid>) and drops; default: a temporary SQLite file",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=PG_ADMIN_URL,
        help=f"connection that creates and drops that database ({PG_ADMIN_URL})",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also time and profile the endpoint in-process"
    )
    parser.add_argument(
        "--profile-requests", type=int, default=2000, help="requests per profiling pass (2000)"
    )
    parser.add_argument(
        "--profile-only",
        action="store_true",
        help="only the in-process profile: no wrk, no gunicorn, nothing written to RESULTS.md",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="do not write benchmarks/RESULTS.md"
    )
    parser.add_argument("--verbose", action="store_true", help="print wrk's full output")
    parser.add_argument(
        "--suite",
        choices=["token", "endpoints"],
        default="token",
        help="token: the token endpoint and /livez (default); endpoints: every route issue 13 "
        "has a target for (JWKS, discovery, userinfo, introspection, refresh, code) and the ratios",
    )
    scale.add_arguments(parser)
    args = parser.parse_args(argv)
    scale.parse_parts(parser, args)
    if args.threads is None:
        args.threads = 1 if args.reference else 2
    args.server = list(dict.fromkeys(args.server or ["granian"]))
    if args.seconds < 1 or args.connections < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("--seconds, --connections and --threads must be >= 1, --warmup >= 0")
    if args.node_warmup < 0:
        parser.error("--node-warmup must be >= 0")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads (wrk needs one per thread)")
    if args.profile_requests < 1 or args.rounds < 1:
        parser.error("--profile-requests and --rounds must be >= 1")
    if args.server_threads is not None and args.server_threads < 1:
        parser.error("--server-threads must be >= 1")
    if len(args.server) > 1 and not args.reference:
        parser.error("several --server need --reference node (each is measured against it)")
    if args.suite == "endpoints" and (args.reference or args.profile or args.profile_only):
        parser.error("--suite endpoints takes neither --reference nor --profile")
    if args.profile_only:
        args.profile, args.no_record = True, True
    return args


def _terminate(signum, frame):  # a signal handler's signature
    raise SystemExit(128 + signum)  # so the finally blocks stop the servers and drop the database


def profile_only(args: argparse.Namespace) -> int:
    """``--profile-only``: the instance and the in-process profile, without wrk nor gunicorn;
    prints the report and records nothing."""
    workdir = Path(tempfile.mkdtemp(prefix="portcullis-bench-"))
    db: Database | None = None
    try:
        (workdir / "instance").mkdir()
        db = make_database(args, workdir)
        use_environment(environment(args, workdir, db, "http://127.0.0.1"))
        log(f"setting up {db.kind} instance in {workdir}")
        client_id, secret = set_up_instance()
        log(f"profiling {args.profile_requests} token requests in-process")
        report, summary = profile_token_endpoint(
            client_id, secret, args.profile_requests, warmup=min(50, args.profile_requests)
        )
        print(report)
        print(summary)
        return 0
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    finally:
        if db is not None:
            db.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def environment(args, workdir: Path, db: Database, issuer: str) -> dict[str, str]:
    plugins = (workdir / "no-plugins") if args.no_plugin else None
    if plugins is not None:
        plugins.mkdir(exist_ok=True)
    return server_environment(workdir / "instance", db.url, issuer, plugins)


@dataclass
class Bench:
    """What one run of ``main`` set up: the folder, the database, the client, the servers."""

    args: argparse.Namespace
    wrk: str
    workdir: Path
    db: Database
    auth: str = ""
    client_id: str = ""
    secret: str = ""
    servers: list[Process] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)  # more PORTCULLIS_* (--scale)
    siblings: list[Bench] = field(default_factory=list)

    def start_python(self, kind: str, workers: int) -> Process:
        port = free_port()
        env = environment(self.args, self.workdir, self.db, f"http://127.0.0.1:{port}")
        env.update(self.extra_env)
        server = PythonServer(kind, workers, self.args.server_threads)
        process = start_python(server, port, env, self.workdir)
        self.servers.append(process)
        return process

    def token_script(self, name: str, form: dict) -> Path:
        script = self.workdir / name
        script.write_text(
            TOKEN_LUA.format(body=lua_string(urlencode(form)), auth=lua_string(self.auth))
        )
        return script

    def sibling(self, name: str, prepare=None) -> Bench:
        """A second instance (folder, database, the same client set-up; ``prepare()`` then
        runs in its app context), stopped and dropped with this one (``--scale``)."""
        workdir = self.workdir / name
        (workdir / "instance").mkdir(parents=True)
        other = Bench(self.args, self.wrk, workdir, make_database(self.args, workdir, f"_{name}"))
        self.siblings.append(other)
        use_environment(environment(self.args, workdir, other.db, "http://127.0.0.1"))
        other.client_id, other.secret = set_up_instance(prepare)
        other.auth = basic_auth(other.client_id, other.secret)
        return other

    def stop(self) -> None:
        while self.servers:
            self.servers.pop().stop()
        while self.siblings:
            other = self.siblings.pop()
            other.stop()
            other.db.drop()


def measure_alone(bench: Bench) -> tuple[Result, Result]:
    """Without a reference: the token endpoint, then the baseline, on one server (2 workers)."""
    server = bench.start_python(bench.args.server[0], WORKERS)
    server.wait_healthy()
    check_endpoints(server.base, bench.auth)
    if not bench.args.no_plugin:
        reference.check_token(
            server.name, server.base, TOKEN_PATH, TOKEN_FORM, bench.auth, API_IDENTIFIER
        )
    script = bench.token_script("token.lua", TOKEN_FORM)
    return load(bench.wrk, bench.args, server, TOKEN_PATH, script), load(
        bench.wrk, bench.args, server, BASELINE_PATH, None
    )


def measure_against_node(bench: Bench, node: str) -> tuple[Result, Result, reference.Comparison]:
    """--reference node: every server started at once (idle while another is loaded), each
    checked with one token, then the rounds, then the baseline of the first server."""
    args = bench.args
    env = reference.node_environment(
        dict(os.environ), bench.client_id, bench.secret, API_IDENTIFIER, API_SCOPES
    )
    node_server = start_node(node, free_port(), env, bench.workdir)
    bench.servers.append(node_server)
    python = {(k, w): bench.start_python(k, w) for k in args.server for w in (WORKERS, 1)}
    for server in bench.servers:
        server.wait_healthy()
    first = python[(args.server[0], WORKERS)]
    check_endpoints(first.base, bench.auth)
    comparison = reference.Comparison()
    node_form = {**NODE_FORM, "scope": " ".join(API_SCOPES)}
    for server, path, form in [
        *((server, TOKEN_PATH, TOKEN_FORM) for server in python.values()),
        (node_server, NODE_TOKEN_PATH, node_form),
    ]:
        claims = reference.check_token(
            server.name, server.base, path, form, bench.auth, API_IDENTIFIER
        )
        comparison.claims[server.name] = sorted(claims)
    script = bench.token_script("token.lua", TOKEN_FORM)
    node_script = bench.token_script("node-token.lua", node_form)
    # Once more before round 1: every worker's caches and node's JIT; node gets longer, as its
    # first measured run came out at half its later ones after a 1-2 s warm-up.
    for server in bench.servers:
        is_node = server is node_server
        seconds = args.node_warmup if is_node else args.warmup
        if seconds > 0:
            lua, path = (node_script, NODE_TOKEN_PATH) if is_node else (script, TOKEN_PATH)
            log(f"first warm-up {seconds}s: {server.name}")
            run_wrk(bench.wrk, args, server.base + path, seconds, lua)
    for number in range(1, args.rounds + 1):
        for kind in args.server:
            for series, server, path, lua in (
                (f"Portcullis {kind} x{WORKERS}", python[(kind, WORKERS)], TOKEN_PATH, script),
                (reference.node_series(kind), node_server, NODE_TOKEN_PATH, node_script),
                (f"Portcullis {kind} x1", python[(kind, 1)], TOKEN_PATH, script),
            ):
                comparison.add(number, series, load(bench.wrk, args, server, path, lua))
    token = comparison.series(f"Portcullis {args.server[0]} x{WORKERS}", 1)[0]
    baseline = load(bench.wrk, args, first, BASELINE_PATH, None)
    return token, baseline, comparison


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.profile_only:
        return profile_only(args)
    wrk = ensure_wrk()
    node = ensure_node() if args.reference else None
    info = machine_info()
    info["node"] = node_versions(node) if node else ""
    info["busy"] = f"{cpu_busy_now():.0f}%"
    if float(info["busy"].rstrip("%")) > 20:
        log(
            f"warning: the machine is already busy ({info['busy']} of one CPU): "
            "the results will be lower than on a quiet machine"
        )
    workdir = Path(tempfile.mkdtemp(prefix="portcullis-bench-"))
    db: Database | None = None
    bench: Bench | None = None
    try:
        (workdir / "instance").mkdir()
        db = make_database(args, workdir)
        bench = Bench(args, wrk, workdir, db)
        use_environment(environment(args, workdir, db, "http://127.0.0.1"))
        log(f"setting up {db.kind} instance in {workdir}")
        bench.client_id, bench.secret = set_up_instance()
        bench.auth = basic_auth(bench.client_id, bench.secret)
        if args.suite == "endpoints":
            return measure_endpoints(bench, info)
        if args.scale:
            return run_scale(bench, info)
        comparison = None
        if node:
            token, baseline, comparison = measure_against_node(bench, node)
        else:
            token, baseline = measure_alone(bench)
        bench.stop()
        return report(args, db, info, bench, token, baseline, comparison)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    finally:
        if bench is not None:
            bench.stop()
        if db is not None:
            db.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def measure_endpoints(bench: Bench, info: dict[str, str]) -> int:
    """``--suite endpoints`` (``bench_endpoints.py``): print (and record) its table."""
    args = bench.args
    script = bench.token_script("token.lua", TOKEN_FORM)
    lines, errors = endpoints.run_suite(bench, load, args.server[0], WORKERS, script)
    bench.stop()
    print("\n" + "\n".join(lines))
    if not args.no_record:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        server = PythonServer(args.server[0], WORKERS, args.server_threads).describe()
        head = [
            f"## {now} -- {bench.db.kind}, endpoints suite"
            + (f" -- {args.note}" if args.note else ""),
            "",
            f"- machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}; "
            f"CPU busy before the run: {info['busy']}",
            f"- server: {server}, {WORKERS} workers; wrk {info['wrk']} `-t{args.threads} "
            f"-c{args.connections} -d{args.seconds}s` after a {args.warmup} s warm-up per route",
            f"- commit: {git_commit()}",
            "",
        ]
        record("\n".join(head + lines) + "\n")
    if errors:
        print(f"bench: error: {errors} failed requests: the numbers are not valid", file=sys.stderr)
    return 1 if errors else 0


def run_scale(bench: Bench, info: dict[str, str]) -> int:
    """``--scale PARTS`` (bench_scale.py): printed, and recorded unless --no-record."""
    args = bench.args
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"## {now} -- {bench.db.kind}, scale: {', '.join(args.scale)}"
    heading += f" -- {args.note}" if args.note else ""
    heading += (
        f"\n\n- machine: {info['nproc']} CPUs, {info['cpu']}; server `{args.server[0]}`; wrk "
        f"`-t{args.threads} -c{args.connections} -d{args.seconds}s`, {args.rounds} rounds; "
        f"CPU busy before: {info['busy']}; commit: {git_commit()}"
    )
    setup = scale.Setup(
        bench, load, check_endpoints, TOKEN_PATH, TOKEN_FORM, API_IDENTIFIER, WORKERS
    )
    text, errors = scale.run(setup, heading)
    bench.stop()
    if not args.no_record:
        record(text)
    return 1 if errors else 0


def report(args, db, info, bench: Bench, token, baseline, comparison) -> int:
    """Print (and record) the results; exit status 1 when any measured run had errors."""
    lines = None
    print()
    if comparison is not None:
        lines = reference.summary_lines(comparison, args.server, args.rounds)
        print("\n".join(lines))
        print()
    print(table(token, baseline))
    print(cpu_lines(token, baseline))
    print(f"\ntokens issued: {token.ok_per_second:,.0f}/s ({db.kind}); {REFERENCE}")
    summary = None
    if args.profile:
        log(f"profiling {args.profile_requests} token requests in-process")
        profiled, summary = profile_token_endpoint(
            bench.client_id, bench.secret, args.profile_requests
        )
        print(profiled)
        print(summary)
    if not args.no_record:
        record(section(args, db, info, token, baseline, summary, lines))
    errors = token.errors + baseline.errors + (comparison.errors if comparison else 0)
    if errors:
        print(f"bench: error: {errors} failed requests: the numbers are not valid", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
