"""The endpoints suite of ``benchmarks/run.py`` (``--suite endpoints``): every endpoint issue 13
has a target for, against one server in one run, and the ratios.

Routes, each loaded by wrk like the token endpoint (warm-up, then the measured run):
``/livez`` (the baseline), the JWKS, discovery, UserInfo (a user access token with ``openid``),
introspection (the confidential web client introspecting its own user access token), client
credentials (the token suite's request), refresh-token rotation and the authorization-code
exchange. A refresh token or a code works once (a second use of a rotated refresh token is a
replay and revokes its session), so those two runs read their request bodies from a pool file,
one line per request, minted in this process through the project's services right before the
run (codes expire after ``AUTHORIZATION_TTL``): each wrk thread takes every n-th line, in turn,
and a thread that runs out sends a body that fails (counted as an error) and says so.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests
from bench_wrk import BenchError, Result, log, lua_string, run_wrk

REDIRECT_URI = "https://app.bench.example/callback"
USER_SCOPE = "openid email"
USERS = 16  # codes and sessions go to the users in turn, as 16 people's apps would
# The web client's ID tokens are signed like every access token of the benchmark (ES256): the
# OIDC default, RS256, costs one 2048-bit RSA signature (about 0.5 ms) per code or refresh.
ID_TOKEN_ALG = "ES256"
JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
USERINFO_PATH = "/oauth/userinfo"
INTROSPECT_PATH = "/oauth/introspect"
TOKEN_PATH = "/oauth/token"
# A pool is minted for this many times the rate it must feed (the warm-up's own rate, or
# client credentials' for the warm-up), plus a margin: a run that runs dry is an error.
POOL_HEADROOM = 1.6
POOL_MARGIN = 500
SPENT_BODY = "grant_type=refresh_token&refresh_token=bench-pool-ran-dry"

STATIC_LUA = """-- written by benchmarks/bench_endpoints.py: one fixed request
wrk.method = {method}
wrk.body = {body}
{headers}
"""

POOL_LUA = """-- written by benchmarks/bench_endpoints.py: each request POSTs the next unused line of
-- the pool file (a refresh token or an authorization code works once); wrk thread i of n
-- takes lines i, i+n, i+2n...; one that runs dry sends a body that fails, and says so.
local pool, thread_count, spent = {pool}, {threads}, {spent}
local headers = {{
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = {auth},
}}
local threads, counter = {{}}, 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  bodies, used, dry = {{}}, 0, 0
  local i = 0
  for line in io.lines(pool) do
    if i % thread_count == id then bodies[#bodies + 1] = line end
    i = i + 1
  end
end

function request()
  used = used + 1
  local body = bodies[used]
  if body == nil then
    dry = dry + 1
    body = spent
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("POOL used %d dry %d\\n", thread:get("used"), thread:get("dry")))
  end
end
"""


def _verifier_and_challenge() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- the instance: a web client, users, and the pools -----------------------------------------


@dataclass
class WebClient:
    """The confidential web client (authorization code + refresh token) and its users."""

    client_id: str
    secret: str
    user_ids: list[str]
    minted: int = 0  # codes and sessions so far: who gets the next one


def set_up_web_client(app) -> WebClient:
    """The web client and USERS users (no password: nobody signs in), each with a consent."""
    from oauth.accounts import consents
    from oauth.accounts.users import create_user
    from oauth.registry.clients import create_client

    with app.app_context():
        client, secret = create_client(
            "bench web app",
            [REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            metadata={"id_token_signed_response_alg": ID_TOKEN_ALG},
        )
        users = [
            create_user(f"user{n}@bench.example", None, name=f"User {n}", email_verified=True)
            for n in range(USERS)
        ]
        for user in users:
            audience = app.config["DEFAULT_AUDIENCE"]
            consents.remember(user, client.client_id, USER_SCOPE.split(), audience)
        return WebClient(client.client_id, secret, [user.id for user in users])


def mint_codes(app, web: WebClient, count: int) -> list[str]:
    """``count`` approved authorization codes with S256 PKCE, as ``protocol/authorize.py``
    validates and approves them (one insert per batch instead of one transaction each); returns
    the token request bodies."""
    from werkzeug.datastructures import MultiDict

    from oauth.protocol import authorize
    from oauth.security import random_token, sha256_hex
    from oauth.storage.db import write_transaction
    from oauth.storage.models import AuthorizationRequest

    bodies, rows = [], []
    with app.test_request_context("/oauth/authorize"):
        for _ in range(count):
            verifier, challenge = _verifier_and_challenge()
            query = {
                "response_type": "code", "client_id": web.client_id,
                "redirect_uri": REDIRECT_URI, "scope": USER_SCOPE,
                "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                "code_challenge": challenge, "code_challenge_method": "S256",
            }  # fmt: skip
            row = authorize.validate_request(MultiDict(query))
            code = random_token(32)
            row.user = web.user_ids[web.minted % USERS]
            row.status, row.code_hash = "approved", sha256_hex(code)
            row.auth_time, row.amr = int(time.time()), ["pwd"]
            web.minted += 1
            rows.append(row)
            bodies.append(
                urlencode(
                    {
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT_URI,
                        "code_verifier": verifier,
                    }  # fmt: skip
                )
            )
        with write_transaction():
            AuthorizationRequest.bulk_create(rows, batch_size=200)
    return bodies


def mint_refresh_tokens(app, web: WebClient, count: int) -> list[str]:
    """``count`` OAuth sessions, as a code exchange stores them, each with one live refresh token
    (``tokens/refresh.new_refresh_token``); returns the token request bodies."""
    from oauth.storage.db import write_transaction
    from oauth.storage.models import OAuthSession, new_uuid
    from oauth.tokens.refresh import new_refresh_token

    bodies = []
    with app.app_context(), write_transaction():
        for _ in range(count):
            session = OAuthSession.create(
                id=new_uuid(),
                user=web.user_ids[web.minted % USERS],
                client=web.client_id,
                scope=USER_SCOPE,
                audience=app.config["DEFAULT_AUDIENCE"],
                auth_time=int(time.time()),
                amr=["pwd"],
            )
            web.minted += 1
            plain = new_refresh_token(session)
            bodies.append(urlencode({"grant_type": "refresh_token", "refresh_token": plain}))
    return bodies


# --- wrk scripts ---------------------------------------------------------------------------------


def static_script(path: Path, method: str, headers: dict[str, str], body: str = "") -> Path:
    lines = "\n".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
    path.write_text(
        STATIC_LUA.format(method=lua_string(method), body=lua_string(body), headers=lines)
    )
    return path


def pool_script(path: Path, pool: Path, threads: int, auth: str) -> Path:
    path.write_text(
        POOL_LUA.format(
            pool=lua_string(str(pool)),
            threads=threads,
            spent=lua_string(SPENT_BODY),
            auth=lua_string(auth),
        )
    )
    return path


def pool_counts(output: str) -> tuple[int, int]:
    """(lines used, requests sent after the pool ran dry) of a pool run, from its ``done``."""
    found = re.findall(r"^POOL used (\d+) dry (\d+)$", output, re.MULTILINE)
    if not found:
        raise BenchError(f"the pool script reported nothing:\n{output}")
    return sum(int(used) for used, _ in found), sum(int(dry) for _, dry in found)


# --- the suite ---------------------------------------------------------------------------------

Load = Callable[..., Result]  # run.py's load(wrk, args, server, path, script)


@dataclass
class Suite:
    bench: object  # run.py's Bench
    load: Load
    app: object
    web: WebClient
    server: object = None  # bench_servers.Process
    results: dict[str, Result] = field(default_factory=dict)
    pools: dict[str, str] = field(default_factory=dict)  # label -> "used N of M"

    @property
    def args(self) -> argparse.Namespace:
        return self.bench.args

    def script(self, name: str) -> Path:
        return self.bench.workdir / name

    def measure(self, label: str, path: str, script: Path | None) -> Result:
        result = self.load(self.bench.wrk, self.args, self.server, path, script)
        result.route = label
        self.results[label] = result
        return result

    def measure_pool(self, label: str, mint: Callable[[int], list[str]], rate: float) -> Result:
        """Warm up on a pool of its own, then measure on a fresh one sized by the warm-up."""
        args = self.args
        url = self.server.base + TOKEN_PATH
        if args.warmup > 0:
            pool = self._pool(label, "warmup", mint, rate * args.warmup)
            log(f"warm-up {args.warmup}s: {self.server.name} {label}")
            output = run_wrk(self.bench.wrk, args, url, args.warmup, pool)
            used, dry = pool_counts(output)
            rate = max(rate, used / args.warmup)
            if dry:
                log(f"warning: the warm-up pool of {label} ran dry ({dry} requests)")
        pool = self._pool(label, "run", mint, rate * args.seconds)
        script = pool.with_suffix(".lua")
        no_warmup = argparse.Namespace(**{**vars(args), "warmup": 0})
        result = self.load(self.bench.wrk, no_warmup, self.server, TOKEN_PATH, script)
        result.route = label
        used, dry = pool_counts(result.raw)
        size = int(self.pools[label])
        self.pools[label] = f"{used:,} of {size:,} used" + (f", ran dry {dry}" if dry else "")
        self.results[label] = result
        return result

    def _pool(self, label: str, phase: str, mint, expected: float) -> Path:
        count = math.ceil(expected * POOL_HEADROOM) + POOL_MARGIN
        started = time.perf_counter()
        bodies = mint(count)
        slug = label.split()[0].lower()
        pool = self.script(f"{slug}-{phase}.pool")
        pool.write_text("\n".join(bodies) + "\n")
        log(f"minted {count:,} for {label} ({phase}) in {time.perf_counter() - started:.1f} s")
        pool_script(pool.with_suffix(".lua"), pool, self.args.threads, self.web_auth)
        self.pools[label] = str(count)
        return pool.with_suffix(".lua")

    @property
    def web_auth(self) -> str:
        pair = f"{self.web.client_id}:{self.web.secret}"  # both URL-safe
        return "Basic " + base64.b64encode(pair.encode()).decode()


def _user_tokens(suite: Suite) -> dict:
    """One code exchange and one refresh over HTTP: both work, and a user access token."""
    base, auth = suite.server.base, {"Authorization": suite.web_auth}
    answers = []
    for body in (
        *mint_codes(suite.app, suite.web, 1),
        *mint_refresh_tokens(suite.app, suite.web, 1),
    ):
        response = requests.post(
            base + TOKEN_PATH,
            data=body,
            headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        if response.status_code != 200 or "refresh_token" not in response.json():
            raise BenchError(
                f"a user token request failed: HTTP {response.status_code}\n{response.text}"
            )
        answers.append(response.json())
    token = answers[0]["access_token"]
    for path, kwargs in (
        (USERINFO_PATH, {"headers": {"Authorization": f"Bearer {token}"}}),
        (INTROSPECT_PATH, {"headers": auth, "data": {"token": token}}),
    ):
        method = requests.get if path == USERINFO_PATH else requests.post
        response = method(base + path, timeout=10, **kwargs)
        if response.status_code != 200 or response.json().get("active") is False:
            raise BenchError(
                f"{path} did not accept the token: {response.status_code} {response.text}"
            )
    return answers[0]


def measure(suite: Suite, cc_script: Path) -> None:
    """Every route on one server, in the order of the table."""
    token = _user_tokens(suite)["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": suite.web_auth}
    introspect_body = urlencode({"token": token, "token_type_hint": "access_token"})
    suite.measure("GET /livez", "/livez", None)
    suite.measure(f"GET {JWKS_PATH}", JWKS_PATH, None)
    suite.measure(f"GET {DISCOVERY_PATH}", DISCOVERY_PATH, None)
    userinfo = static_script(suite.script("userinfo.lua"), "GET", bearer)
    suite.measure(f"GET {USERINFO_PATH}", USERINFO_PATH, userinfo)
    introspect = static_script(suite.script("introspect.lua"), "POST", form, introspect_body)
    suite.measure(f"POST {INTROSPECT_PATH}", INTROSPECT_PATH, introspect)
    cc = suite.measure("client credentials", TOKEN_PATH, cc_script)
    suite.measure_pool(
        "refresh rotation", lambda n: mint_refresh_tokens(suite.app, suite.web, n), cc.rps
    )
    suite.measure_pool("code exchange", lambda n: mint_codes(suite.app, suite.web, n), cc.rps)


# Targets of issue 13: (route label, the route it is divided by, at least).
TARGETS = [
    (f"GET {JWKS_PATH}", "GET /livez", 0.9),
    (f"GET {DISCOVERY_PATH}", "GET /livez", 0.9),
    (f"GET {USERINFO_PATH}", "GET /livez", 0.7),
    (f"POST {INTROSPECT_PATH}", "GET /livez", 0.7),
    ("client credentials", "GET /livez", None),
    ("refresh rotation", "client credentials", 0.5),
    ("code exchange", "client credentials", 0.5),
]


def table(results: dict[str, Result], pools: dict[str, str]) -> list[str]:
    rows = [
        "| route | req/s | p50 | p99 | errors | ratio | per CPU-s (server + database) | ratio | to "
        "| target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        _row(results["GET /livez"], None, "", None),
    ]
    for label, over, target in TARGETS:
        rows.append(_row(results[label], results[over], over, target))
    cpu = "; ".join(f"{label}: {result.cpu}" for label, result in results.items())
    rows += [
        "",
        "ratio: req/s over req/s of the route in `to`; per CPU-s (server + database): requests "
        "per second of CPU that the server's processes and the PostgreSQL server used (req/s "
        "over their CPUs; SQLite runs inside the server's processes), and its ratio: steadier "
        "than req/s when other processes compete for the CPUs, but blind to waiting (SQLite's "
        "write lock, PostgreSQL's round trips), so the target is checked on the first ratio.",
        "",
        f"CPU during the measured runs (100% = one CPU): {cpu}.",
        "",
        "Pools (one line per request): " + "; ".join(f"{k}: {v}" for k, v in pools.items()),
    ]
    return rows


def _per_cpu(result: Result) -> float:
    """Requests per CPU-second of the server and its database: on PostgreSQL sharing the
    machine, a database round trip costs CPU that the server's own processes do not show."""
    cpus = result.server_cpus + result.database_cpus
    return result.rps / cpus if cpus else 0.0


def _row(result: Result, over: Result | None, over_label: str, target: float | None) -> str:
    ratio = cpu_ratio = ""
    verdict = ""
    if over is not None and over.rps:
        ratio = f"{result.rps / over.rps:.2f}"
        if _per_cpu(over):
            cpu_ratio = f"{_per_cpu(result) / _per_cpu(over):.2f}"
        if target is not None:
            verdict = f">= {target}: {'met' if result.rps / over.rps >= target else 'NOT met'}"
    errors = f"{result.errors}" + (
        f" ({result.socket_errors} socket, {result.non_2xx} non-2xx)" if result.errors else ""
    )
    return (
        f"| {result.route} | {result.rps:,.0f} | {result.p50_ms:.2f} ms | {result.p99_ms:.2f} ms "
        f"| {errors} of {result.requests:,} | {ratio} | {_per_cpu(result):,.0f} | {cpu_ratio} "
        f"| {over_label} | {verdict} |"
    )


def run_suite(bench, load: Load, kind: str, workers: int, cc_script: Path) -> tuple[list[str], int]:
    """Set up the web client, start one server, measure every route; returns (the table's
    lines, failed requests)."""
    from app import create_app

    app = create_app()  # this process's app: it mints the pools into the server's database
    try:
        suite = Suite(bench, load, app, set_up_web_client(app))
        suite.server = bench.start_python(kind, workers)
        suite.server.wait_healthy()
        measure(suite, cc_script)
        errors = sum(result.errors for result in suite.results.values())
        return table(suite.results, suite.pools), errors
    finally:
        db = app.extensions.get("portcullis.database")
        if db is not None:
            getattr(db, "close_all", db.close)()
