"""What a client over COLORIZE_RATE sends before it hears 429, now (counted before the body is read,
``ratelimit.UploadRateMiddleware``) against a baseline commit (counted by a route dependency, after FastAPI
had read and parsed the whole multipart body), run side by side on the same machine: each version serves from
its own checkout on a scratch PostgreSQL database; a raw-socket client sends an upload of SIZE MB in 64 KB
chunks and stops as soon as an answer can be read, recording the bytes it had sent and the time to the 429.

    .venv/bin/python benchmarks/bench_upload_refusal.py [--baseline 8a475dc] [--mb 19] [--tries 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import scratch_stack  # noqa: E402

CHUNK = 64 * 1024


def refused_upload(port: int, megabytes: float) -> tuple[int, int, float]:
    """(status, bytes of body sent before the answer could be read, seconds to the answer)."""
    boundary = "colorlab-bench"
    head_part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = int(megabytes * 1e6)
    length = len(head_part) + size + len(tail)
    request = (
        f"POST /colorize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; "
        f"boundary={boundary}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(request + head_part)
    sent = len(head_part)
    chunk = b"\0" * CHUNK
    try:
        while sent < length - len(tail):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            part = chunk[: min(CHUNK, length - len(tail) - sent)]
            sock.sendall(part)
            sent += len(part)
        else:
            sock.sendall(tail)
            sent += len(tail)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    sock.settimeout(30)
    try:
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError):
        pass
    elapsed = time.perf_counter() - started
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, sent, elapsed


def measure(checkout: Path, megabytes: float, tries: int) -> list[tuple[int, int, float]]:
    """Serve from ``checkout`` with COLORIZE_RATE=1: one upload is let through, the next ``tries`` are
    refused; what each refused one cost."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    with scratch_stack(redis_url, COLORIZE_RATE="1", PHOTO_BUDGET="100000") as stack:
        port = int(stack.env["PORT"])
        stack.env["PYTHONPATH"] = str(checkout)  # the schema is this checkout's (a baseline uses part of it)
        stack.procs["web"] = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve"],
            env=stack.env,
            cwd=checkout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.wait_healthy()
        refused_upload(port, 0.01)  # the minute's one upload (a small one: refused as not an image, counted)
        return [refused_upload(port, megabytes) for _ in range(tries)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="8a475dc", help="commit whose limit ran after the body")
    parser.add_argument("--mb", type=float, default=19.0, help="upload size in MB (under MAX_UPLOAD_BYTES)")
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True,
            capture_output=True,
        )  # fmt: skip
        try:
            rows = {
                f"baseline {args.baseline}": measure(baseline, args.mb, args.tries),
                "now": measure(ROOT, args.mb, args.tries),
            }
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{when}, {platform.machine()} {os.cpu_count()} cores, {args.mb:g} MB uploads over loopback\n")
    print("| version | answer | body sent before it (MB, median) | time to it (ms, median) |")
    print("|---|---|---:|---:|")
    medians = {}
    for name, results in rows.items():
        statuses = sorted({status for status, _, _ in results})
        sent = sorted(s for _, s, _ in results)[len(results) // 2] / 1e6
        took = sorted(t for _, _, t in results)[len(results) // 2] * 1000
        medians[name] = (sent, took)
        print(f"| {name} | {', '.join(map(str, statuses))} | {sent:.2f} | {took:.1f} |")
    (base_sent, base_took), (now_sent, now_took) = medians.values()
    ratios = f"bytes sent {now_sent / base_sent:.3f}×, time to the 429 {now_took / base_took:.3f}×"
    print(f"\nnow / baseline: {ratios}")


if __name__ == "__main__":
    main()
