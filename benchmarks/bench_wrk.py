"""wrk, its output and the CPU meter of ``benchmarks/run.py`` (shared by its modules)."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """A set-up or run failure: printed as one message, exit status 1."""


# --- small helpers -----------------------------------------------------------------------


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def warn(message: str) -> None:
    print(f"bench: warning: {message}", file=sys.stderr, flush=True)


TOKEN_LUA = """-- written by benchmarks/run.py: POST a client-credentials token request
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = {auth}
"""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Result:
    route: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    raw: str
    cpu: str = ""
    server_cpus: float = 0.0  # CPUs the server's processes used during the run (1.0 = one CPU)
    database_cpus: float = 0.0  # CPUs the PostgreSQL server used meanwhile (0 on SQLite)

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx

    @property
    def ok_per_second(self) -> float:
        return max(self.requests - self.non_2xx, 0) / self.seconds if self.seconds else 0.0


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise BenchError(f"cannot read wrk duration {text!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse_wrk(route: str, output: str) -> Result:
    def find(pattern: str) -> re.Match:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise BenchError(f"cannot parse wrk output ({pattern!r}):\n{output}")
        return match

    total = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Result(
        route=route,
        requests=int(total.group(1)),
        seconds=to_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=to_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=to_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        raw=output,
    )


TICKS = os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + steal + idle + iowait


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, command name, utime + stime jiffies) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
                table[int(entry.name)] = (int(fields[1]), name, int(fields[11]) + int(fields[12]))
    return table


def cpu_busy_now(seconds: float = 1.0) -> float:
    """How busy the machine is, in % of one CPU, over a short sample."""
    busy0, _, total0 = _machine_ticks()
    time.sleep(seconds)
    busy1, _, total1 = _machine_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1) * 100 * (os.cpu_count() or 1)


class CpuMeter:
    """Who used the CPUs during a wrk run: the server (``label``: its process and children,
    e.g. gunicorn's master + workers), wrk, the PostgreSQL server, every other process, idle
    and steal."""

    def __init__(self, server_pid: int, label: str = "gunicorn") -> None:
        self.server_pid = server_pid
        self.label = label
        self.server_cpus = 0.0
        self.database_cpus = 0.0
        self.summary = ""

    def __enter__(self) -> CpuMeter:
        self.machine = _machine_ticks()
        self.processes = _processes()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children = usage.ru_utime + usage.ru_stime
        return self

    def __exit__(self, *exc) -> None:
        busy0, steal0, total0 = self.machine
        busy1, steal1, total1 = _machine_ticks()
        after = _processes()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = (usage.ru_utime + usage.ru_stime - self.children) * TICKS  # wrk was waited for

        def used(pid: int) -> int:
            return after[pid][2] - self.processes.get(pid, (0, "", 0))[2]

        server_tree, todo = set(), [self.server_pid]
        while todo:
            pid = todo.pop()
            server_tree.add(pid)
            todo += [child for child, (ppid, _, _) in after.items() if ppid == pid]
        server = sum(used(pid) for pid in server_tree if pid in after)
        postgres = sum(used(pid) for pid, (_, name, _) in after.items() if name == "postgres")
        total = max(total1 - total0, 1)
        cpus = os.cpu_count() or 1
        busy, steal = busy1 - busy0, steal1 - steal0
        other = max(busy - server - wrk - postgres, 0)

        def share(ticks: float) -> str:
            return f"{ticks / total * 100 * cpus:.0f}%"

        parts = [f"{self.label} {share(server)}", f"wrk {share(wrk)}"]
        if postgres / total * cpus >= 0.01:
            parts.append(f"PostgreSQL server {share(postgres)}")
        parts += [f"other processes {share(other)}", f"idle {share(max(total - busy - steal, 0))}"]
        if steal / total * cpus >= 0.01:
            parts.append(f"steal {share(steal)}")
        self.summary = ", ".join(parts)
        self.server_cpus = server / total * cpus
        self.database_cpus = postgres / total * cpus


def run_wrk(wrk: str, args, url: str, seconds: int, script: Path | None) -> str:
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout
