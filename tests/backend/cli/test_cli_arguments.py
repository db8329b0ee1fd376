"""Arguments the command line must refuse before it starts anything."""

from __future__ import annotations

from pathlib import Path

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


def test_train_refuses_options_its_arch_does_not_use(tmp_path: Path) -> None:
    empty = str(tmp_path)  # never reached: the refusal comes first
    for arch, extra, named in (
        (
            "reference-fusion",
            ["--limit", "3", "--max-minutes", "5", "--bf16"],
            "--limit, --max-minutes, --bf16",
        ),
        ("unet-bins", ["--patience", "2", "--bf16"], "--patience, --bf16"),
        ("cnn", ["--pairs", "10", "--decay-steps", "5"], "--pairs, --decay-steps"),
    ):
        code, output = run_cli("train", "--arch", arch, "--data", empty, *extra)
        assert code == 2 and f"--arch {arch} does not use {named}" in output, output
    # Options left at their defaults, even when written out, are not refused.
    code, output = run_cli("train", "--arch", "reference-fusion", "--data", empty, "--device", "cpu")
    assert code == 1 and "MANIFEST.csv" in output, output


def test_hash_password_refuses_a_short_or_mistyped_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.auth import verify_password

    def typing(*answers: str) -> None:
        typed = iter(answers)
        monkeypatch.setattr("backend.cli.study._at_terminal", lambda: True)
        monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))

    for answers, words in ((["short"], "at least 8 characters"), (["long-enough", "other-one"], "differ")):
        typing(*answers)
        code, output = run_cli("study", "hash-password")
        assert code == 2 and words in output, output  # a refusal, as README says
    typing("long-enough", "long-enough")
    code, output = run_cli("study", "hash-password")
    assert code == 0 and verify_password("long-enough", output.strip())


def test_hash_password_reads_a_piped_password_without_warnings() -> None:
    from click.testing import CliRunner

    from backend.auth import verify_password
    from backend.cli import main

    result = CliRunner().invoke(main, ["study", "hash-password"], input="piped-secret\n")
    assert result.exit_code == 0 and verify_password("piped-secret", result.output.strip()), result.output
    assert "Warning" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "says"),
    [
        # a negative retention once deleted every finished job at the next sweep
        ({"RETAIN_DONE_DAYS": "-1"}, "RETAIN_DONE_DAYS: Input should be greater than 0"),
        ({"JOB_MAX_ATTEMPTS": "0"}, "JOB_MAX_ATTEMPTS: Input should be greater than or equal to 1"),
        ({"JOB_TIME_LIMIT": "0"}, "JOB_TIME_LIMIT: Input should be greater than or equal to 10"),
        ({"HEARTBEAT_INTERVAL": "-5"}, "HEARTBEAT_INTERVAL: Input should be greater than 0"),
        (
            {"HEARTBEAT_INTERVAL": "10", "STALE_AFTER": "15"},
            "STALE_AFTER (15 s) must be at least twice HEARTBEAT_INTERVAL (10 s)",
        ),
    ],
)
def test_settings_no_server_could_use_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    from backend.config import get_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        code, output = run_cli("sweep")  # refused before it touches anything
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert code == 1 and f"configuration error: {says}" in output, output


def test_migrate_on_a_database_that_does_not_exist_says_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    from backend.config import get_settings

    missing = postgres_url.rsplit("/", 1)[0] + "/colorlab_no_such_database"
    monkeypatch.setenv("DATABASE_URL", missing)
    get_settings.cache_clear()
    try:
        code, output = run_cli("migrate")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert code == 1 and 'database "colorlab_no_such_database" does not exist' in output, output
    assert "sqlalche.me" not in output and len(output.strip().splitlines()) == 1, output
