"""Arguments the command line must refuse before it starts anything."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.config import Settings
from tests.backend.cli.conftest import run_cli


def test_ports_and_worker_counts_out_of_range_are_refused() -> None:
    # A port over 65535 used to be bound modulo 65536 (70000 → 4464) while the log said 70000.
    for port in ("70000", "0", "-1"):
        code, output = run_cli("serve", "--port", port)
        assert code == 2 and "1<=x<=65535" in output, output
    with pytest.raises(ValidationError, match="65535"):
        Settings(port=70000)
    code, output = run_cli("worker", "--concurrency", "0")  # was taken as "not given"
    assert code == 2 and "x>=1" in output, output
