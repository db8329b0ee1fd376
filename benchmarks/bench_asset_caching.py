"""What a returning visitor's browser asks for: the pages' CSS, JS and images, before and after they were
addressed by their content (``backend/static_files.py``), side by side.

Starts ``colorlab serve`` (the embedded SQLite default, a scratch data folder) from this checkout and, with
``--root``, from another one (e.g. a git worktree of the commit before), opens each page in Debian's Chromium
(Playwright), then "releases" a change to app.css (a CSS variable appended, removed afterwards) and opens the
same pages again in the same browser context (a returning visitor): the second visit's requests for
``/static/`` files that reached the server (Chrome DevTools Protocol; cache hits left out), their 304s, its
load time (median over the pages, REPEATS returning visitors), and whether the page used the released
stylesheet or an old copy from the browser's cache.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/bench_asset_caching.py --root /tmp/before
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from stack import Stack  # noqa: E402

PAGES = ("/", "/history", "/methods", "/compare")
REPEATS = 10


def serve(root: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    # the static files as a release leaves them: last modified a month ago (an image built then, a checkout),
    # which is what a browser's heuristic freshness (10 % of a file's age) reckons from without Cache-Control
    month_ago = time.time() - 30 * 86400
    for path in (root / "frontend" / "static").iterdir():
        os.utime(path, (month_ago, month_ago))
    env = {**os.environ, "DATA_DIR": str(data), "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-m", "backend.cli", "migrate"], cwd=root, env=env, check=True,
                   capture_output=True)  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--port", str(port)], cwd=root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        Stack(env, base).wait_healthy()
    except RuntimeError:
        proc.kill()
        raise
    return proc, base


MARK = "\n:root { --bench-release: 2; }\n"  # appended to app.css between the two visits: "a release"


def returning_visit(browser: Any, base: str, stylesheet: Path) -> tuple[int, int, list[float], bool]:
    """Each page once (the cache fills), then "a release" changes app.css, then each page again: the second
    visit's requests for /static/ files that went to the server, of them 304s, its load times (s), and
    whether the browser used the new app.css."""
    context = browser.new_context()
    page = context.new_page()
    for path in PAGES:
        page.goto(base + path, wait_until="load")
    original = stylesheet.read_text()
    stylesheet.write_text(original + MARK)
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        sent: dict[str, str] = {}
        cached: set[str] = set()
        statuses: dict[str, int] = {}  # responses that came from the server (not the disk cache)

        def received(event: dict[str, Any]) -> None:
            if not event["response"].get("fromDiskCache"):
                statuses[event["requestId"]] = event["response"]["status"]

        cdp.on("Network.requestWillBeSent", lambda e: sent.update({e["requestId"]: e["request"]["url"]}))
        cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
        cdp.on("Network.responseReceived", received)
        loads = []
        for path in PAGES:
            start = time.perf_counter()
            page.goto(base + path, wait_until="load")
            loads.append(time.perf_counter() - start)
        fresh = page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--bench-release')"
        )
    finally:
        stylesheet.write_text(original)
    context.close()
    asked = [rid for rid, url in sent.items() if "/static/" in url and rid not in cached and rid in statuses]
    return len(asked), sum(1 for rid in asked if statuses.get(rid) == 304), loads, fresh.strip() == "2"


def measure(base: str, root: Path, chromium: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    asked = not_modified = fresh = 0
    loads: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        for _ in range(REPEATS):
            n, n304, times, new = returning_visit(browser, base, root / "frontend" / "static" / "app.css")
            asked, not_modified, fresh, loads = asked + n, not_modified + n304, fresh + new, loads + times
        browser.close()
    visits = REPEATS * len(PAGES)
    return {
        "asked": asked / visits,
        "304": not_modified / visits,
        "load_ms": 1000 * statistics.median(loads),
        "fresh": fresh / REPEATS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=None, help="another checkout to measure beside this one")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    roots = [("this checkout", ROOT)] + ([(str(args.root), args.root)] if args.root else [])
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, pages {', '.join(PAGES)}, "
          f"{REPEATS} returning visits each\n")  # fmt: skip
    print("| checkout | /static requests to the server per page view | of them 304 | page load, median (ms) "
          "| returning visits that got the released app.css |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for label, root in roots:
        with tempfile.TemporaryDirectory() as data:
            proc, base = serve(root, Path(data))
            try:
                found = measure(base, root, args.chromium)
            finally:
                proc.terminate()
                proc.wait(timeout=20)
        print(f"| {label} | {found['asked']:.1f} | {found['304']:.1f} | {found['load_ms']:.0f} "
              f"| {found['fresh']:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
