"""The three layers and which way imports go between them (README, "Architecture"; contract: .importlinter).

- ``worker/colorizers/``: the colorizer library; imports nothing from ``backend/`` or the worker service.
- ``backend/``: the web app and the job lifecycle; never imports the worker service, and the web process
  never loads torch.
- the worker service (``worker/celery_app.py``, ``tasks.py``, ``runner.py``): may import both.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

WORKER_SERVICE = ("worker.celery_app", "worker.tasks", "worker.runner")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_web_app_loads_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys, backend.main; backend.main.create_app(); "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    env = {**os.environ, "DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", "the web process imported torch"


def test_backend_never_imports_the_worker_service() -> None:
    # backend/cli is the command line, where the layers are put together (`colorlab worker` starts the
    # worker service); everything else in backend/ must work without it.
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "backend").rglob("*.py"))
        if "cli" not in path.relative_to(ROOT / "backend").parts
        for module in sorted(_imports(path))
        if module.startswith(WORKER_SERVICE)
    ]
    assert offenders == []


def test_the_import_contract_holds() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / ".importlinter")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
