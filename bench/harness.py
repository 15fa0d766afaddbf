"""Shared pieces of the HTTP benchmarks: a bench database set, a gunicorn server, a load loop.

Benchmarks run against databases of their own (`<name>_bench`, `<name>_bench_shard_N` on the
server DATABASE_URL names) so they never touch development data; run them through
`python -m instagram.devstack exec -- python bench/<script>.py` to get the embedded services.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def bench_environment() -> dict[str, str]:
    env = dict(os.environ)
    url = urlsplit(env.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/instagram"))
    name = url.path.lstrip("/") + "_bench"
    env["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{name}"))
    count = int(env.get("SHARD_COUNT", "2"))
    env["SHARD_DATABASE_URLS"] = ",".join(
        urlunsplit(url._replace(path=f"/{name}_shard_{n}")) for n in range(count)
    )
    env.setdefault("DEBUG", "0")
    env.setdefault("SECRET_KEY", "bench-" + "k" * 50)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env["SECURE_SSL_REDIRECT"] = "0"
    env["POSTS_PER_DAY"] = "100000"  # benchmarks seed faster than people post
    env["MEDIA_ROOT"] = str(ROOT / "var" / "bench-media")
    env["STATIC_ROOT"] = str(ROOT / "var" / "bench-static")
    (ROOT / "var" / "bench-static").mkdir(parents=True, exist_ok=True)
    return env


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "instagram.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_all", interactive=False, verbosity=0)


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2):
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "instagram.wsgi", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


CPU_PARTS = ("client", "web", "postgres", "redis")


def cpu_by_part(port: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far on this machine by each part of a request's
    path: this process (the load's client), the web server on `port`, PostgreSQL's processes and
    Redis's (or Valkey's). Read from Linux's /proc; empty where there is none."""
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    server = f"127.0.0.1:{port}".encode()
    parts = dict.fromkeys(CPU_PARTS, 0.0)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(entry.name) == os.getpid():
            part = "client"
        elif server in command:  # the gunicorn master and its workers
            part = "web"
        elif name.startswith("postgres"):
            part = "postgres"
        elif name.startswith(("redis", "valkey")):
            part = "redis"
        else:
            continue
        parts[part] += (int(fields[11]) + int(fields[12])) / tick
    return parts


def load(port: int, path: str, *, headers: dict, seconds: float, clients: int) -> dict:
    """Closed-loop load: `clients` keep-alive connections for `seconds`; rps, latency, and the
    CPU each request cost each part of the machine (`cpu_us`, where /proc can tell)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu_before = cpu_by_part(port)
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    cpu_after = cpu_by_part(port)
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "errors": errors[0],
        "requests": len(latencies),
        "cpu_us": {
            part: (cpu_after[part] - cpu_before[part]) * 1e6 / len(latencies) for part in cpu_after
        },
    }
