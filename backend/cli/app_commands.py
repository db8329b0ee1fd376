"""`colorlab serve | worker | migrate | sweep | run`: the processes that make up the service."""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import click

from backend.cli import database_reason
from backend.config import Lane, Settings, get_settings


@click.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@click.option(
    "--downgrade-to",
    default=None,
    metavar="REVISION",
    help="Go back to this revision instead (a rollback: the older code's head, e.g. 0011); back up first.",
)
def migrate(revision: str, downgrade_to: str | None) -> None:
    """Create or upgrade the database schema (Alembic), or take it back with --downgrade-to."""
    from backend import migrate as mig

    settings = get_settings()
    try:
        if downgrade_to is not None:
            mig.downgrade(downgrade_to)
        else:
            mig.upgrade(revision)
    except Exception as exc:  # connection refused, bad URL, an unknown revision, ...
        raise click.ClickException(
            f"migration failed on {_safe_url(settings.database_url)}: {database_reason(exc)}"
        ) from None
    where = f"at {downgrade_to}" if downgrade_to is not None else "up to date"
    click.echo(f"database schema {where} ({_safe_url(settings.database_url)})")


@click.command()
@click.option("--host", default=None, help="Bind address (default: HOST setting).")
@click.option(
    "--port",
    default=None,
    # Unchecked, 70000 was bound as 70000 % 65536 while the log said 70000.
    type=click.IntRange(1, 65535),
    help="Port (default: PORT setting).",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Web worker processes (default: WEB_WORKERS setting). Each has its own listening socket on the "
    "same port (SO_REUSEPORT), so the kernel spreads connections evenly; one that dies is restarted.",
)
@click.option("--reuse-port", is_flag=True, hidden=True, help="One worker of `serve --workers N`.")
def serve(host: str | None, port: int | None, workers: int | None, reuse_port: bool) -> None:
    """Run the web application (API and pages)."""
    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    workers = workers or settings.web_workers
    if not reuse_port:  # a worker of `serve --workers N` shares the port its supervisor checked
        free_to_listen(host, port)
        schema_current(settings)
    if workers == 1 or reuse_port:
        _serve_one(host, port, reuse_port)
        return
    # Not uvicorn's own --workers: its processes share one socket, and under a burst of new connections the
    # process that wakes first takes most of them (64/36 measured), so one core works while the other idles.
    exe = [sys.executable, "-m", "backend.cli", "serve", "--host", host, "--port", str(port), "--reuse-port"]
    supervise([Child(f"web worker {i + 1}", exe) for i in range(workers)])


def schema_current(settings: Settings) -> None:
    """Refuse to serve a database whose schema is older than this code's (every upload would fail)."""
    from backend import migrate as mig

    try:
        behind = mig.pending()
    except Exception:  # not reachable now: the app starts and says so per request (503), as ever
        return
    if behind:
        raise click.ClickException(
            f"the database {_safe_url(settings.database_url)} is {behind}: run `colorlab migrate` first"
        )


def free_to_listen(host: str, port: int) -> None:
    """Refuse (exit 1, one line) a host and port the web app could not listen on, before any process starts:
    a port already taken is a setting to change, not a crash to restart for ever."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        hint = {
            errno.EADDRINUSE: "another program serves there: choose another --port (or PORT)",
            errno.EADDRNOTAVAIL: "not an address of this machine: choose another --host (or HOST)",
            errno.EACCES: "ports under 1024 need privileges: choose another --port (or PORT)",
        }.get(exc.errno or 0, "choose another --host (or HOST)")
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from None


def _serve_one(host: str, port: int, reuse_port: bool) -> None:
    import gc
    import socket

    import uvicorn

    # Uvicorn's logging, with the time and the logger's name, and the app's own loggers through it (they fell
    # to Python's last-resort handler: bare text, warnings only)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["formatters"]["default"]["fmt"] = "%(asctime)s %(levelprefix)s %(name)s: %(message)s"
    log_config["root"] = {"handlers": ["default"], "level": "INFO"}
    config = uvicorn.Config(
        "backend.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="info",
        log_config=log_config,
        # X-Forwarded-For is read by the app, and only from FORWARDED_ALLOW_IPS (web.client_address):
        # uvicorn's own handling would believe any loopback client.
        proxy_headers=False,
        http="backend.httpserver:HeaderTimeoutProtocol",  # HEADER_READ_TIMEOUT
        # No access log: it would put client IPs next to URLs that carry participant ids.
        access_log=False,
        # Outlive clients' idle keep-alive pools, so a connection is not closed under a request.
        timeout_keep_alive=30,
        backlog=2048,
    )
    # Import the app now, then keep everything built so far (all the modules, the app) out of the garbage
    # collector's full passes: each walked ~160,000 objects for ~110 ms, twice within a 200-participant burst
    # (benchmarks/RESULTS.md, "User study"). Only the serving process: tests build many apps in one process.
    config.load()
    gc.collect()
    gc.freeze()
    if not reuse_port:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how it is stopped: exit 0, no "Aborted!"
            uvicorn.Server(config).run()
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(config.backlog)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


@click.command()
@click.option(
    "--lane",
    type=click.Choice([*Lane, "all"]),
    default="all",
    show_default=True,
    help="fast: feed-forward jobs (FAST_QUEUE); iterative: exemplar jobs (ITERATIVE_QUEUE); all: both "
    "queues in one pool (a single small machine; a fast job may then wait behind an iterative one).",
)
@click.option(
    "--concurrency",
    default=None,
    type=click.IntRange(min=1),  # 0 was taken as "not given"
    help="Worker processes (default: FAST_CONCURRENCY or ITERATIVE_CONCURRENCY by lane).",
)
@click.option(
    "--loglevel",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="How much the worker logs.",
)
def worker(lane: str, concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker on one lane's queue (one model cache per process)."""
    from worker.celery_app import worker_app

    settings = get_settings()
    schema_current(settings)  # else every job it takes fails on a missing table, logged each second
    lanes = list(Lane) if lane == "all" else [Lane(lane)]
    queues = [settings.queue_of(one) for one in lanes]
    # "all" runs as many processes as the fast lane would: the busier one
    default = settings.concurrency_of(lanes[0])
    app = worker_app()
    app.worker_main(
        [
            "worker",
            f"--queues={','.join(queues)}",
            f"--concurrency={concurrency or default}",
            "--pool=prefork",
            "--prefetch-multiplier=1",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=colorlab-{lane}@{os.uname().nodename}.{os.getpid()}",
        ]
    )


@click.command()
def sweep() -> None:
    """Re-queue lost or stalled jobs and delete expired ones once (workers do this periodically)."""
    from backend.db import session_scope
    from backend.job_lifecycle import purge_expired
    from backend.job_lifecycle import sweep as do_sweep

    settings = get_settings()
    with session_scope() as s:
        sent = do_sweep(s, settings)
    with session_scope() as s:
        freed = purge_expired(s, settings)
    click.echo(f"re-queued {len(sent)} job(s); retention freed {freed}")


class Child:
    """One supervised process of `colorlab run`, restarted with back-off when it dies."""

    BACKOFF_MAX = 60.0
    HEALTHY_AFTER = 60.0  # a child that ran this long starts the back-off afresh when it dies

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.restart_at: float | None = None
        self.backoff = 1.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, preexec_fn=_die_with_parent)
        self.started = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> None:
        """Restart the child if it died and its back-off has passed."""
        if self.proc is None:
            return
        if self.restart_at is not None:
            if now >= self.restart_at:
                click.echo(f"restarting the {self.name}", err=True)
                self.start()
            return
        code = self.proc.poll()
        if code is None:
            return
        if now - self.started >= self.HEALTHY_AFTER:
            self.backoff = 1.0
        click.echo(f"the {self.name} exited ({code}); restarting it in {self.backoff:g} s", err=True)
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, self.BACKOFF_MAX)

    def stop(self, deadline: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_until_answering(url: str, children: list[Child], timeout: float = 300) -> bool:
    """Poll ``url`` until it answers 200 (True), or until timeout (False)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        now = time.monotonic()
        for child in children:
            child.check(now)
        time.sleep(0.2)
    return False


def running_message(settings: Settings) -> str:
    """What `colorlab run` prints once the web app answers (the API docs only where they are served)."""
    docs = f"  (API docs: {settings.public_url}/docs)" if settings.docs_enabled else ""
    return f"\nColorLab is running at {settings.public_url}/{docs}\nPress Ctrl+C to stop."


@click.command()
@click.option("--fetch/--no-fetch", default=True, show_default=True, help="Fetch obtainable weights first.")
def run(fetch: bool) -> None:
    """Run everything on one machine: migrate, fetch weights, start the web app and one worker per lane.

    A child that dies (a worker killed by the OOM killer, a crash) is restarted with back-off (1 s, doubling
    up to 60 s); the URL is printed once the web app answers.
    """
    settings = get_settings()
    free_to_listen(settings.host, settings.port)
    exe = [sys.executable, "-m", "backend.cli"]
    subprocess.run([*exe, "migrate"], check=True)
    if fetch:
        # Best effort: methods whose weights cannot be had here are shown as unavailable, with the reason.
        subprocess.run([*exe, "weights", "fetch", "--best-effort"], check=False)
    # The children stay in our process group (Ctrl+C or a kill of the group reaches them) and die with us
    # even when only this supervisor is killed (-9): nothing is left holding the port or the queue.
    children = [
        *(Child(f"{lane}-lane worker", [*exe, "worker", "--lane", lane]) for lane in Lane),
        Child("web app", [*exe, "serve", "--workers", "1"]),
    ]
    local = f"http://127.0.0.1:{settings.port}" if settings.host in ("0.0.0.0", "::") else None
    health = f"{local or f'http://{settings.host}:{settings.port}'}/healthz"

    def announce() -> None:
        if wait_until_answering(health, children):
            click.echo(running_message(settings))
        else:
            click.echo(f"the web app did not answer at {health}; see the messages above", err=True)

    supervise(children, announce)


def supervise(children: list[Child], started: Callable[[], None] | None = None) -> None:
    """Start the children, restart any that dies (with back-off), stop them all on SIGTERM/SIGINT."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        deadline = time.monotonic() + 20
        for child in children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in children:
            child.stop(deadline)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.start()
    if started is not None:
        started()
    while not stopping:
        now = time.monotonic()
        for child in children:
            child.check(now)
        time.sleep(0.5)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


COMMANDS = [migrate, serve, worker, sweep, run]
