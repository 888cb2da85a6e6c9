"""``run.py --scale PARTS``: issue 13's "cost grows with work, not with data" and "several
instances" targets, measured with wrk against live gunicorn (see README.md, "Scale").

- ``data``: tokens/s on the empty instance against a second instance holding ``--seed-rows``
  clients, users and consents (``bench_seed.py``), both servers up at once, A/B/A/B over
  ``--rounds`` (target: seeded >= 0.9x empty);
- ``rss``: one worker's resident memory (``VmRSS``) before and while it issues ``--rss-tokens``
  tokens, wrk run after run until wrk has counted them (target: under 80 MB, no growth);
- ``instances``: two instances of one worker each against one instance of two workers, all on
  one PostgreSQL database and one Redis (``RATELIMIT_STORAGE_URI``), loaded by two wrk
  processes with half the connections each in both cases (target: >= 0.9x).

Prints only; ``run.py`` records the text unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import requests
from bench_reference import verify_es256
from bench_wrk import BenchError, Result, log, lua_string, parse_wrk, run_wrk, warn

PARTS = ("data", "rss", "instances")
RSS_LIMIT_MB = 80.0
REDIS_URL = "redis://127.0.0.1:6379/0"

MANY_CLIENTS_LUA = """-- written by benchmarks/bench_scale.py: the token request, round-robin over clients
local auths = {{ {auths} }}
local n = 0
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  n = n + 1
  wrk.headers["Authorization"] = auths[(n % #auths) + 1]
  return wrk.format()
end
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scale",
        help="comma-separated parts of the scale suite instead of the usual runs: data, rss, "
        "instances (or all); see benchmarks/README.md",
    )
    parser.add_argument(
        "--seed-rows", type=int, default=100_000, help="--scale data: rows seeded (100000)"
    )
    parser.add_argument(
        "--rss-tokens", type=int, default=100_000, help="--scale rss: tokens issued (100000)"
    )
    parser.add_argument(
        "--rss-clients",
        type=int,
        default=1,
        help="--scale rss: spread the load over this many seeded machine clients (1: the "
        "benchmark's client, the usual request)",
    )
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help=f"--scale instances: the Redis ({REDIS_URL})"
    )


def parse_parts(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.scale:
        return
    parts = [p.strip() for p in args.scale.split(",") if p.strip()]
    parts = list(PARTS) if parts == ["all"] else parts
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        parser.error(f"--scale: parts are {', '.join(PARTS)} or all, not {args.scale!r}")
    if args.reference:
        parser.error("--scale and --reference do not go together")
    if args.seed_rows < 2 or args.rss_tokens < 1 or args.rss_clients < 1:
        parser.error("--seed-rows must be >= 2, --rss-tokens and --rss-clients >= 1")
    if "instances" in parts and args.connections < 2:
        parser.error("--scale instances needs --connections >= 2 (two wrk processes)")
    args.scale = [p for p in PARTS if p in parts]


@dataclass
class Setup:
    """What ``run.py`` hands over: its bench (servers, siblings), load and checks."""

    bench: object  # run.Bench
    load: object  # run.load(wrk, args, server, path, script) -> Result
    check: object  # run.check_endpoints(base, auth)
    token_path: str
    token_form: dict
    api_identifier: str
    workers: int
    seeded: object = None  # the seeded sibling Bench, once made
    credentials: list = None

    def script(self, bench, name: str) -> Path:
        return bench.token_script(name, self.token_form)


def rate(results: list[Result]) -> float:
    seconds = sum(r.seconds for r in results)
    return sum(max(r.requests - r.non_2xx, 0) for r in results) / seconds if seconds else 0.0


def _seeded(setup: Setup):
    # Imported here: bench_seed imports the project (oauth), which must come from the checkout
    # run.py puts first on sys.path once it sets up, never from an installed copy.
    import bench_seed

    if setup.seeded is None:
        args = setup.bench.args
        made = {}
        log(f"seeding {args.seed_rows:,} clients, users and consents into a second instance")
        started = time.monotonic()

        def seed() -> None:
            made["seeded"] = bench_seed.seed(
                args.seed_rows, setup.api_identifier, keep_credentials=args.rss_clients
            )

        setup.seeded = setup.bench.sibling("seeded", prepare=seed)
        s = made["seeded"]
        log(
            f"seeded in {time.monotonic() - started:.1f} s: {s.clients:,} clients, "
            f"{s.users:,} users, {s.consents:,} consents, {s.grants:,} client grants"
        )
        setup.credentials = s.machine_credentials
    return setup.seeded


def data_part(setup: Setup) -> tuple[list[str], int]:
    bench, args = setup.bench, setup.bench.args
    seeded = _seeded(setup)
    kind = args.server[0]
    empty = bench.start_python(kind, setup.workers)
    full = seeded.start_python(kind, setup.workers)
    runs: dict[str, list[Result]] = {"empty": [], "seeded": []}
    targets = {"empty": (bench, empty), "seeded": (seeded, full)}
    scripts = {}
    for label, (owner, server) in targets.items():
        server.wait_healthy()
        setup.check(server.base, owner.auth)
        scripts[label] = setup.script(owner, f"token-{label}.lua")
    for number in range(1, args.rounds + 1):
        for label, (_, server) in targets.items():
            log(f"data round {number}: {label}")
            runs[label].append(
                setup.load(bench.wrk, args, server, setup.token_path, scripts[label])
            )
    empty.stop()
    full.stop()
    ratio, lines = _rounds_table(
        f"Data: {args.seed_rows:,} clients, users and consents (`--scale data`)",
        ("empty", "empty tokens/s"), ("seeded", "seeded tokens/s"), "seeded / empty", runs,
    )  # fmt: skip
    lines += [
        f"Target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'}. p99 empty/seeded (last "
        f"round): {runs['empty'][-1].p99_ms:.1f} / {runs['seeded'][-1].p99_ms:.1f} ms.",
    ]
    errors = sum(r.errors for rs in runs.values() for r in rs)
    return lines, errors


# --- memory --------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def rss_mb(pid: int) -> float:
    """The resident set (VmRSS) of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


def _many_clients_script(setup: Setup, owner, count: int) -> Path:
    credentials = (setup.credentials or [])[:count]
    if len(credentials) < count:
        raise BenchError(f"--rss-clients {count}: only {len(credentials)} seeded machine clients")
    auths = ", ".join(
        lua_string("Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode())
        for cid, secret in credentials
    )
    script = owner.workdir / "token-many.lua"
    script.write_text(
        MANY_CLIENTS_LUA.format(auths=auths, body=lua_string(urlencode(setup.token_form)))
    )
    return script


def rss_part(setup: Setup) -> tuple[list[str], int]:
    """One worker (so it issues every token), on the seeded instance."""
    args = setup.bench.args
    owner = _seeded(setup)
    server = owner.start_python(args.server[0], 1)
    server.wait_healthy()
    setup.check(server.base, owner.auth)
    if args.rss_clients > 1:
        script = _many_clients_script(setup, owner, args.rss_clients)
    else:
        script = setup.script(owner, "token-rss.lua")
    workers = _children(server.process.pid)
    if len(workers) != 1:
        raise BenchError(f"expected one gunicorn worker, found {workers}")
    worker = workers[0]
    samples = [(0, rss_mb(worker))]
    issued, errors = 0, 0
    log(f"rss: worker {worker} at {samples[0][1]:.1f} MB; issuing {args.rss_tokens:,} tokens")
    while issued < args.rss_tokens:
        result = parse_wrk("rss", run_wrk(owner.wrk, args, server.base + setup.token_path,
                                          args.seconds, script))  # fmt: skip
        issued += max(result.requests - result.non_2xx, 0)
        errors += result.errors
        if not result.requests:
            raise BenchError("rss: wrk completed no request")
        samples.append((issued, rss_mb(worker)))
    server.stop()
    return _rss_lines(args, samples, errors), errors


def _rss_lines(args, samples: list[tuple[int, float]], errors: int) -> list[str]:
    after = samples[-1][1]
    first = samples[1] if len(samples) > 2 else samples[0]  # after the first run: warm
    growth = (after - first[1]) / max(samples[-1][0] - first[0], 1) * 1000 * 1024  # KB/1,000
    step = max(1, len(samples) // 10)
    shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    clients = "the benchmark's client" if args.rss_clients == 1 else f"{args.rss_clients:,} clients"
    return [
        f"### Memory: one worker, {samples[-1][0]:,} tokens from {clients} (`--scale rss`)",
        "",
        "tokens issued -> worker VmRSS: " + ", ".join(f"{n:,} -> {mb:.1f} MB" for n, mb in shown),
        "",
        f"Before: {samples[0][1]:.1f} MB; after: **{after:.1f} MB** (target < {RSS_LIMIT_MB:.0f} "
        f"MB: {'met' if after < RSS_LIMIT_MB else 'NOT met'}); growth after the first run: "
        f"{growth:.1f} KB per 1,000 tokens; {errors} errors.",
    ]


# --- several instances ---------------------------------------------------------------------


def _check_redis(url: str) -> None:
    import redis  # the redis extra, only for this part

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        raise BenchError(f"--scale instances: Redis at {url} does not answer: {error}") from None


def _pair(setup: Setup, targets: list[str], script: Path) -> Result:
    """Two wrk processes at once, one per URL, half the connections each (after a warm-up
    like that); summed."""
    args = setup.bench.args
    half = SimpleNamespace(threads=1, connections=max(1, args.connections // 2))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        if args.warmup > 0:
            list(pool.map(lambda url: run_wrk(setup.bench.wrk, half, url, args.warmup, script),
                          targets))  # fmt: skip
        outputs = list(
            pool.map(lambda url: run_wrk(setup.bench.wrk, half, url, args.seconds, script), targets)
        )
    results = [parse_wrk("pair", output) for output in outputs]
    seconds = max(r.seconds for r in results)
    requests_ = sum(r.requests for r in results)
    return Result(
        route="pair", requests=requests_, seconds=seconds, rps=requests_ / seconds,
        p50_ms=max(r.p50_ms for r in results), p99_ms=max(r.p99_ms for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        non_2xx=sum(r.non_2xx for r in results), raw="\n".join(outputs),
    )  # fmt: skip


def _shared_limit(bases: list[str], path: str) -> int:
    """Failed client authentications, alternating between the instances, until the first
    429: about CLIENT_AUTH_RATE_LIMIT when the counters are shared, twice that if not."""
    bad = {"Authorization": "Basic " + "c2NhbGUtY2hlY2stY2xpZW50Ondyb25n"}  # a made-up client
    for attempt in range(200):
        response = requests.post(
            bases[attempt % len(bases)] + path,
            data={"grant_type": "client_credentials"},
            headers=bad,
            timeout=10,
        )
        if response.status_code == 429:
            return attempt
    return -1


def _rounds_table(
    title: str, base: tuple[str, str], other: tuple[str, str], heading: str, runs: dict
) -> tuple[float, list[str]]:
    """(other's rate over base's, the markdown table of every round and of all of them);
    ``base`` and ``other`` are (key of ``runs``, column heading)."""
    (a_key, a_title), (b_key, b_title) = base, other
    ratio = rate(runs[b_key]) / rate(runs[a_key]) if rate(runs[a_key]) else 0.0
    lines = [
        f"### {title}",
        "",
        f"| round | {a_title} | {b_title} | {heading} |",
        "|---:|---:|---:|---:|",
    ]
    for number, (a, b) in enumerate(zip(runs[a_key], runs[b_key], strict=True), 1):
        lines.append(
            f"| {number} | {a.ok_per_second:,.0f} | {b.ok_per_second:,.0f} | "
            f"{b.ok_per_second / a.ok_per_second if a.ok_per_second else 0:.2f} |"
        )
    lines.append(f"| all | {rate(runs[a_key]):,.0f} | {rate(runs[b_key]):,.0f} | **{ratio:.2f}** |")
    return ratio, lines + [""]


def instances_part(setup: Setup) -> tuple[list[str], int]:
    bench, args = setup.bench, setup.bench.args
    if bench.db.kind != "postgresql":
        raise BenchError(
            "--scale instances shares one PostgreSQL: add --database-url postgresql://..."
        )
    _check_redis(args.redis_url)
    bench.extra_env["PORTCULLIS_RATELIMIT_STORAGE_URI"] = args.redis_url
    kind = args.server[0]
    one = bench.start_python(kind, 2)
    pair = [bench.start_python(kind, 1), bench.start_python(kind, 1)]
    for server in (one, *pair):
        server.wait_healthy()
        setup.check(server.base, bench.auth)
    token = requests.post(
        pair[0].base + setup.token_path, data=setup.token_form,
        headers={"Authorization": bench.auth}, timeout=10,
    ).json()["access_token"]  # fmt: skip
    jwks_uri = requests.get(pair[1].base + "/.well-known/openid-configuration", timeout=10)
    verify_es256(token, requests.get(jwks_uri.json()["jwks_uri"], timeout=10).json())
    log("instances: a token of instance 1 verifies with instance 2's JWKS")
    failures = _shared_limit([s.base for s in pair], setup.token_path)
    log(f"instances: first 429 after {failures} failed authentications across both")
    script = setup.script(bench, "token-instances.lua")
    runs: dict[str, list[Result]] = {"one": [], "two": []}
    urls = {
        "one": [one.base + setup.token_path] * 2,
        "two": [s.base + setup.token_path for s in pair],
    }
    for number in range(1, args.rounds + 1):
        order = ("one", "two") if number % 2 else ("two", "one")  # ABBA: drift cancels out
        log(f"instances round {number}: {' then '.join(order)} instance(s)")
        for label in order:
            runs[label].append(_pair(setup, urls[label], script))
    for server in (one, *pair):
        server.stop()
    ratio, lines = _rounds_table(
        "Several instances: one PostgreSQL, one Redis (`--scale instances`)",
        ("one", "1 instance x2 workers"), ("two", "2 instances x1 worker"), "two / one", runs,
    )  # fmt: skip
    lines += [
        f"Target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'}. Load: two wrk processes "
        f"(`-t1 -c{max(1, args.connections // 2)}`) in both cases, one per instance for two; "
        "odd rounds measure one instance first, even rounds two. "
        f"Rate limits in Redis: the first 429 came after {failures} failed client "
        "authentications alternating between the two instances (shared counters: the limit, "
        "not twice it). A token of one instance verified with the other's JWKS.",
    ]
    return lines, sum(r.errors for rs in runs.values() for r in rs)


def run(setup: Setup, heading: str) -> tuple[str, int]:
    """Every part asked for; (markdown text, failed requests)."""
    parts = {"data": data_part, "rss": rss_part, "instances": instances_part}
    text, errors = [heading, ""], 0
    for name in setup.bench.args.scale:
        lines, failed = parts[name](setup)
        errors += failed
        text += [*lines, ""]
        print("\n".join(lines), flush=True)
    if errors:
        warn(f"{errors} failed requests: the numbers are not valid")
    return "\n".join(text), errors


__all__ = ["PARTS", "Setup", "add_arguments", "parse_parts", "run"]
