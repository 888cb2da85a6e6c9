"""The servers ``benchmarks/run.py`` loads: Portcullis under a Python server (gunicorn sync,
gunicorn gthread, granian WSGI) and node-oidc-provider, the reference (``node-oidc/``)."""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import requests
from bench_wrk import BenchError, log

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "benchmarks" / "node-oidc"
GTHREAD_THREADS = 4  # gthread's threads per worker (--server-threads)
GRANIAN_THREADS = 1  # portcullis-serve's default (oauth/serve.py DEFAULT_THREADS)
KEEP_ALIVE = 5  # seconds, gthread (gunicorn's default is 2)

# --server NAME: what it runs, for the printed and recorded description.
PYTHON_SERVERS = {
    "sync": "gunicorn, `sync` workers (no keep-alive: one TCP connection per request)",
    "gthread": "gunicorn, `gthread` workers ({threads} threads each, keep-alive {keep_alive} s)",
    "granian": "granian via `portcullis-serve` (the README's production command), WSGI interface ({threads} Python thread(s) per worker, keep-alive)",
}


@functools.cache
def gunicorn_has_control_socket() -> bool:
    """Recent gunicorn (27 here) opens a control socket at one fixed path
    (``~/.gunicorn/gunicorn.ctl``) shared by every gunicorn of the user; ours do without it."""
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True
    )
    return "--no-control-socket" in done.stdout


def package_version(name: str) -> str | None:
    with contextlib.suppress(PackageNotFoundError):
        return version(name)
    return None


@dataclass(frozen=True)
class PythonServer:
    """Portcullis (``app:create_app()``) under one Python server with ``workers`` processes."""

    kind: str  # a key of PYTHON_SERVERS
    workers: int
    threads: int | None = None  # --server-threads; None: the server's own default

    @property
    def name(self) -> str:
        return f"Portcullis {self.kind} x{self.workers}"

    def command(self, port: int) -> list[str]:
        host = "127.0.0.1"
        if self.kind == "granian":  # exactly the production command
            command = [
                sys.executable, "-m", "oauth.serve", "--workers", str(self.workers),
                "--host", host, "--port", str(port),
                "--threads", str(self.threads or GRANIAN_THREADS),
            ]  # fmt: skip
            return command
        command = [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-k", self.kind]
        if self.kind == "gthread":
            command += ["--threads", str(self.threads or GTHREAD_THREADS)]
            command += ["--keep-alive", str(KEEP_ALIVE)]
        if gunicorn_has_control_socket():
            command.append("--no-control-socket")
        return [*command, "-b", f"{host}:{port}", "app:create_app()"]

    def describe(self) -> str:
        threads = self.threads or (GRANIAN_THREADS if self.kind == "granian" else GTHREAD_THREADS)
        text = PYTHON_SERVERS[self.kind].format(threads=threads, keep_alive=KEEP_ALIVE)
        server = "granian" if self.kind == "granian" else "gunicorn"
        return f"{text.replace(server, f'{server} {package_version(server)}', 1)}"


class Process:
    """A server on loopback: its process, its log file, its health check."""

    def __init__(
        self,
        name: str,
        command: list[str],
        port: int,
        env: dict[str, str],
        log_path: Path,
        *,
        cwd: Path = ROOT,
        health_path: str = "/healthz",
        cpu_label: str = "gunicorn",
    ) -> None:
        self.name = name
        self.cpu_label = cpu_label  # who the CPU line says used the server's CPU
        self.base = f"http://127.0.0.1:{port}"
        self.command = command
        self.log_path = log_path
        self.health_path = health_path
        self._log = open(log_path, "w")  # noqa: SIM115  # closed in stop()
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_healthy(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base + self.health_path, timeout=5).status_code == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not become healthy:\n{self.log_path.read_text()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def start_python(server: PythonServer, port: int, env: dict[str, str], workdir: Path) -> Process:
    slug = f"{server.kind}-{server.workers}"
    label = "granian" if server.kind == "granian" else "gunicorn"
    log_path = workdir / f"{slug}.log"
    process = Process(server.name, server.command(port), port, env, log_path, cpu_label=label)
    log(f"starting {server.name}: " + " ".join(process.command[2:]))
    return process


def ensure_node() -> str:
    """The path of node, with ``node-oidc/node_modules`` installed (``npm ci``) when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node:
        raise BenchError("--reference node needs Node.js (20 or later) on PATH")
    if not (NODE_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        if not npm:
            raise BenchError(f"{NODE_DIR}/node_modules is missing and npm is not on PATH")
        log(f"npm ci in {NODE_DIR.relative_to(ROOT)}")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR)
        if done.returncode != 0:
            raise BenchError(f"npm ci failed in {NODE_DIR} ({done.returncode})")
    return node


def node_versions(node: str) -> str:
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    package = NODE_DIR / "node_modules" / "oidc-provider" / "package.json"
    provider = "?"
    with contextlib.suppress(OSError, ValueError, KeyError):
        provider = json.loads(package.read_text())["version"]
    return f"node-oidc-provider {provider} on Node.js {node_version.strip().lstrip('v')}"


def start_node(node: str, port: int, env: dict[str, str], workdir: Path) -> Process:
    """node-oidc-provider (``node-oidc/server.mjs``), one process; ``env`` carries BENCH_*."""
    process = Process(
        "node-oidc-provider",
        [node, "server.mjs"],
        port,
        dict(env, BENCH_PORT=str(port), BENCH_HOST="127.0.0.1", NODE_ENV="production"),
        workdir / "node-oidc.log",
        cwd=NODE_DIR,
        health_path="/.well-known/openid-configuration",
        cpu_label="node",
    )
    log(f"starting node-oidc-provider: node server.mjs on port {port}")
    return process
