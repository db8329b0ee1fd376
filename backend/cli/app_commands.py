"""`colorlab serve | worker | migrate | sweep | run`: the processes that make up the service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from backend.config import get_settings


@click.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def migrate(revision: str) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from backend import migrate as mig

    settings = get_settings()
    try:
        mig.upgrade(revision)
    except Exception as exc:  # connection refused, bad URL, ...
        raise click.ClickException(f"migration failed on {_safe_url(settings.database_url)}: {exc}") from None
    click.echo(f"database schema up to date ({_safe_url(settings.database_url)})")


@click.command()
@click.option("--host", default=None, help="Bind address (default: HOST setting).")
@click.option("--port", default=None, type=int, help="Port (default: PORT setting).")
@click.option("--workers", default=1, show_default=True, help="Web worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the web application (API and pages)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "backend.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
        # X-Forwarded-For is read by the app, and only from FORWARDED_ALLOW_IPS (web.client_address):
        # uvicorn's own handling would believe any loopback client.
        proxy_headers=False,
        http="backend.httpserver:HeaderTimeoutProtocol",  # HEADER_READ_TIMEOUT
        # No access log: it would put client IPs next to URLs that carry participant ids.
        access_log=False,
        # Outlive clients' idle keep-alive pools, so a connection is not closed under a request.
        timeout_keep_alive=30,
    )


@click.command()
@click.option("--concurrency", default=None, type=int, help="Worker processes (default: WORKER_CONCURRENCY).")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker on the colorization queue (one model cache per process)."""
    from worker.celery_app import get_celery

    settings = get_settings()
    app = get_celery()
    app.worker_main(
        [
            "worker",
            f"--queues={settings.queue_name}",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            "--pool=prefork",
            "--prefetch-multiplier=1",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=colorlab@{os.uname().nodename}.{os.getpid()}",
        ]
    )


@click.command()
def sweep() -> None:
    """Re-queue lost or stalled jobs and delete expired ones once (workers do this periodically)."""
    from backend.db import session_scope
    from backend.jobs import purge_expired
    from backend.jobs import sweep as do_sweep

    settings = get_settings()
    with session_scope() as s:
        sent = do_sweep(s, settings)
    with session_scope() as s:
        freed = purge_expired(s, settings)
    click.echo(f"re-queued {len(sent)} job(s); retention freed {freed}")


@click.command()
@click.option("--fetch/--no-fetch", default=True, show_default=True, help="Fetch obtainable weights first.")
def run(fetch: bool) -> None:
    """Run everything on one machine: migrate, fetch weights, start the web app and a worker."""
    settings = get_settings()
    exe = [sys.executable, "-m", "backend.cli"]
    subprocess.run([*exe, "migrate"], check=True)
    if fetch:
        # Best effort: methods whose weights cannot be had here are shown as unavailable, with the reason.
        subprocess.run([*exe, "weights", "fetch", "--best-effort"], check=False)
    # The children stay in our process group (Ctrl+C or a kill of the group reaches them) and die with us
    # even when only this supervisor is killed (-9): nothing is left holding the port or the queue.
    procs = [
        subprocess.Popen([*exe, "worker"], preexec_fn=_die_with_parent),
        subprocess.Popen([*exe, "serve"], preexec_fn=_die_with_parent),
    ]
    click.echo(
        f"\nColorLab is running at {settings.public_url}/  (API docs: {settings.public_url}/docs)\n"
        "Press Ctrl+C to stop."
    )

    def stop(*_: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in procs:
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    click.echo("a ColorLab process exited; stopping the others", err=True)
    stop()


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
