"""Peak memory of the web process while it takes one batch of phone-size photos (`POST /batches`).

Starts `colorlab serve` on an empty embedded database of its own, posts N distinct 4000×3000 JPEGs (a real
photo scaled up with sensor-like noise, one block changed per photo so none is a duplicate of another) as
one batch, and samples the server's resident memory every 0.2 s until the answer.

    .venv/bin/python benchmarks/bench_batch_memory.py [--photos 40] [--port 8131]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.redteam import phone_photo  # noqa: E402


def photos(n: int) -> list[bytes]:
    base = np.asarray(Image.open(io.BytesIO(phone_photo(4000, 3000))).convert("RGB")).copy()
    out = []
    for i in range(n):
        base[:64, :64] = (i * 37 % 256, i * 11 % 256, 128)  # distinct bytes: no photo is stored twice
        buf = io.BytesIO()
        Image.fromarray(base).save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--port", type=int, default=8131)
    args = parser.parse_args()
    files = photos(args.photos)
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(os.environ, DATA_DIR=data_dir)  # the embedded default, in a folder of its own
        colorlab = str(ROOT / ".venv" / "bin" / "colorlab")
        subprocess.run([colorlab, "migrate"], env=env, check=True, capture_output=True)
        server = subprocess.Popen(
            [colorlab, "serve", "--port", str(args.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{args.port}"
        try:
            for _ in range(120):
                try:
                    httpx.get(base + "/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.5)
            httpx.get(base + "/methods")  # the process as it serves: method list loaded
            before = rss_mb(server.pid)
            peak, done = [before], threading.Event()

            def watch() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_mb(server.pid))
                    time.sleep(0.2)

            watcher = threading.Thread(target=watch)
            watcher.start()
            start = time.perf_counter()
            form = [("images", (f"photo-{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files)]
            answer = httpx.post(base + "/batches", files=form, data={"method": "cnn"}, timeout=1800)
            seconds = time.perf_counter() - start
            done.set()
            watcher.join()
            assert answer.status_code == 202, answer.text
            assert answer.json()["accepted"] == args.photos, answer.text
        finally:
            server.terminate()
            server.wait()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    total = sum(map(len, files)) / 1e6
    print(f"{stamp}, {platform.machine()}: {args.photos} photos of 12 MP ({total:.0f} MB) in one batch")
    print(f"RSS before {before:.0f} MB, peak {peak[0]:.0f} MB (+{peak[0] - before:.0f} MB), {seconds:.1f} s")


if __name__ == "__main__":
    main()
