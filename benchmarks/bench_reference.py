"""``benchmarks/run.py --reference node``: Portcullis against node-oidc-provider, A/B/A/B.

Every round loads, for each ``--server``, Portcullis with 2 workers, then node-oidc-provider
(one Node process), then Portcullis with 1 worker, each with the same wrk settings; the ratios
are Portcullis tokens/s over the node-oidc-provider run of the same round and server (2 workers:
the issue's "ratio", 1 worker: its "per core"). Before any load each server issues one token,
checked here: an ES256 JWT whose signature verifies against the server's JWKS, with the
audience, the scopes and the one extra claim (Portcullis: a ``customize_access_token`` plugin).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from bench_wrk import BenchError, Result, log
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

CLAIM_NAME = "https://bench.example/tenant"
CLAIM_VALUE = "bench"
PLUGIN_SOURCE = f'''"""Written by benchmarks/run.py: the one customize_access_token plugin of the benchmark."""

from oauth import hookimpl


@hookimpl
def customize_access_token(claims, context):
    return {{{CLAIM_NAME!r}: {CLAIM_VALUE!r}}}
'''
P99_TARGET_MS = 25.0  # issue 13: p99 under 25 ms at 16 connections


def write_plugin(folder: Path) -> Path:
    """The plugin folder (``PORTCULLIS_PLUGINS_DIR``) holding only the benchmark's plugin."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_claim.py").write_text(PLUGIN_SOURCE)
    return folder


def node_environment(env: dict[str, str], client_id: str, secret: str, audience: str, scopes):
    return dict(
        env,
        BENCH_CLIENT_ID=client_id,
        BENCH_CLIENT_SECRET=secret,
        BENCH_AUDIENCE=audience,
        BENCH_SCOPES=" ".join(scopes),
        BENCH_CLAIM_NAME=CLAIM_NAME,
        BENCH_CLAIM_VALUE=CLAIM_VALUE,
    )


# --- the token check ---------------------------------------------------------------------


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_es256(token: str, jwks: dict) -> tuple[dict, dict]:
    """(header, claims) of a compact JWS signed ES256 by a P-256 key of ``jwks``; BenchError
    when it is not one or the signature does not verify."""
    try:
        head, body, signature = token.split(".")
        header, claims = json.loads(_b64(head)), json.loads(_b64(body))
        raw = _b64(signature)
    except ValueError as error:
        raise BenchError(f"not a compact JWS: {error}") from None
    if header.get("alg") != "ES256" or len(raw) != 64:
        raise BenchError(f"not an ES256 JWS: header {header}, signature of {len(raw)} bytes")
    keys = [
        k
        for k in jwks.get("keys", [])
        if k.get("kty") == "EC" and k.get("crv") == "P-256" and k.get("kid") == header.get("kid")
    ]
    if not keys:
        raise BenchError(f"no P-256 key with kid {header.get('kid')!r} in the JWKS")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64(keys[0]["x"]), "big"),
        int.from_bytes(_b64(keys[0]["y"]), "big"),
        ec.SECP256R1(),
    )
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        numbers.public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BenchError("the ES256 signature does not verify against the JWKS") from None
    return header, claims


def check_token(name: str, base: str, path: str, form: dict, auth: str, audience: str) -> dict:
    """One token from ``base``: an ES256 JWT of the server's JWKS with the audience and the
    benchmark's claim, else BenchError. Returns its claims."""
    response = requests.post(base + path, data=form, headers={"Authorization": auth}, timeout=10)
    body = response.json() if "json" in response.headers.get("Content-Type", "") else {}
    if response.status_code != 200 or not body.get("access_token"):
        raise BenchError(
            f"{name} did not issue a token: HTTP {response.status_code}\n{response.text}"
        )
    discovery = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
    jwks = requests.get(discovery["jwks_uri"], timeout=10).json()
    try:
        _, claims = verify_es256(body["access_token"], jwks)
    except BenchError as error:
        raise BenchError(f"{name}: the access token is not valid: {error}") from None
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    problems = []
    if audience not in audiences:
        problems.append(f"aud {claims.get('aud')!r}")
    if claims.get(CLAIM_NAME) != CLAIM_VALUE:
        problems.append(f"no {CLAIM_NAME!r}: {CLAIM_VALUE!r} claim")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
        problems.append(f"exp {claims.get('exp')!r}")
    if problems:
        raise BenchError(f"{name}: unexpected token claims ({', '.join(problems)}): {claims}")
    log(f"{name}: ES256 JWT verified, claims {', '.join(sorted(claims))}")
    return claims


# --- the rounds --------------------------------------------------------------------------


@dataclass
class Comparison:
    """The measured runs of ``--reference node``, in order: (round, series, Result)."""

    runs: list[tuple[int, str, Result]] = field(default_factory=list)
    claims: dict[str, list[str]] = field(default_factory=dict)  # server -> token claim names

    def add(self, round_number: int, series: str, result: Result) -> None:
        self.runs.append((round_number, series, result))

    def series(self, name: str, round_number: int | None = None) -> list[Result]:
        return [r for n, s, r in self.runs if s == name and round_number in (None, n)]

    @property
    def errors(self) -> int:
        return sum(result.errors for _, _, result in self.runs)


def rate(results: list[Result]) -> float:
    """Successful requests per second over several runs (each run weighted by its length)."""
    seconds = sum(r.seconds for r in results)
    return sum(max(r.requests - r.non_2xx, 0) for r in results) / seconds if seconds else 0.0


def per_cpu(results: list[Result]) -> float:
    """Successful requests per CPU-second of the server's own processes, over several runs."""
    cpu_seconds = sum(r.server_cpus * r.seconds for r in results)
    return (
        sum(max(r.requests - r.non_2xx, 0) for r in results) / cpu_seconds if cpu_seconds else 0.0
    )


def node_series(kind: str) -> str:
    return f"node-oidc-provider (next to {kind})"


def ratio(numerator: list[Result], denominator: list[Result], measure=rate) -> str:
    below = measure(denominator)
    return f"{measure(numerator) / below:.2f}" if below and numerator else "-"


def runs_table(comparison: Comparison) -> str:
    rows = [
        "| round | server | tokens/s | per server CPU-s | p50 | p99 | errors | CPU (100% = one CPU) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for number, name, result in comparison.runs:
        flag = " (over the 25 ms target)" if result.p99_ms > P99_TARGET_MS else ""
        errors = f"{result.errors}"
        if result.errors:
            errors = (
                f"**{result.errors}** ({result.socket_errors} socket, {result.non_2xx} non-2xx)"
            )
        rows.append(
            f"| {number} | {name.split(' (')[0]} | {result.ok_per_second:,.0f} | "
            f"{per_cpu([result]):,.0f} | "
            f"{result.p50_ms:.2f} ms | {result.p99_ms:.2f} ms{flag} | "
            f"{errors} of {result.requests:,} | {result.cpu} |"
        )
    return "\n".join(rows)


def ratio_table(comparison: Comparison, kinds: list[str], rounds: int) -> str:
    rows = [
        "| server | round | 2 workers / node (target >= 1.0) | 1 worker / node, per core "
        "(target >= 0.5) | per server CPU-s: 2 workers / node | 1 worker / node |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        two, one, node = f"Portcullis {kind} x2", f"Portcullis {kind} x1", node_series(kind)
        for number in [*range(1, rounds + 1), None]:
            label = str(number) if number else "**all rounds**"
            cells = [
                ratio(comparison.series(series, number), comparison.series(node, number), measure)
                for measure in (rate, per_cpu)
                for series in (two, one)
            ]
            rows.append(f"| {kind} | {label} | {' | '.join(cells)} |")
    return "\n".join(rows)


def summary_lines(comparison: Comparison, kinds: list[str], rounds: int) -> list[str]:
    lines = [
        runs_table(comparison),
        "",
        "Ratios (Portcullis tokens/s over node-oidc-provider's in the same round; "
        '"all rounds": requests over seconds of every round). The last two columns divide '
        "tokens by the CPU-seconds the server's own processes used instead of by wall-clock "
        "seconds: steadier when other processes share the machine, but not issue 13's measure "
        "(a server that leaves a CPU idle is not penalised):",
        "",
        ratio_table(comparison, kinds, rounds),
        "",
    ]
    if comparison.errors:
        lines.append(f"**{comparison.errors} errors: these runs are not valid measurements.**")
    else:
        lines.append("Zero errors in every run.")
    by_claims: dict[tuple[str, ...], list[str]] = {}
    for server, names in comparison.claims.items():
        by_claims.setdefault(tuple(names), []).append(server)
    lines.append("")
    for names, servers in by_claims.items():
        lines.append(
            f"- token claims of {', '.join(servers)} (ES256 JWT, verified): "
            + ", ".join(f"`{n}`" for n in names)
        )
    return lines
