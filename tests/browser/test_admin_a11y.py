"""The researcher's study page refreshes itself without getting in a keyboard or screen-reader user's way, in
headless Chromium against a real `colorlab serve`: the stimuli panel (every 2 s while colorizations run) and
the results (every 10 s while "Live" is ticked) are not live regions; a small status message per panel says
what changed; a refresh that brings nothing new touches nothing; one that does keeps the keyboard's focus on
the same control and an opened breakdown open. Each participant's row buttons name the participant."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.backend.study.conftest import ADMIN_PASSWORD, SECRET_KEY, photo_files
from tests.browser.conftest import serve_study
from tests.conftest import Proc, child_env, free_port, wait_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PENDING = "a11y-pending"
OPEN = "a11y-results"
PARTICIPANT = "P-123"

# Records every refresh of both panels (admin.js fires "colorlab:refreshed" on a panel after each answer).
RECORD = """() => {
  window.refreshes = { stimuli: [], results: [] };
  for (const id of ["stimuli", "results"]) {
    const panel = document.getElementById(id);
    panel.addEventListener("colorlab:refreshed", (e) => window.refreshes[id].push(e.detail.changed));
  }
}"""


def _settings(tmp: Path) -> dict[str, object]:
    return {"DATA_DIR": tmp / "var", "ADMIN_PASSWORD": ADMIN_PASSWORD, "SECRET_KEY": SECRET_KEY}


def _finish_colorizations(tmp: Path) -> None:
    """Finish the pending study's colorizations in its database, as a worker would."""
    from backend.db import session_scope
    from backend.study import builder
    from tests.backend.study.conftest import finish_jobs
    from tests.conftest import apply_settings, reset_caches

    with pytest.MonkeyPatch.context() as mp:
        apply_settings(mp, **_settings(tmp))
        with session_scope() as session:
            finish_jobs(session, builder.find_study(session, PENDING))
        reset_caches()


@pytest.fixture(scope="module")
def pending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A draft study whose colorizations stay queued (no worker) until the test finishes them; its server's
    address and its data folder."""
    from backend.config import get_settings
    from backend.db import session_scope
    from backend.study import builder
    from tests.conftest import apply_settings, migrate, reset_caches

    tmp = tmp_path_factory.mktemp("a11y-pending")
    spec = builder.StudySpec(
        title="Pending", methods=["cnn"], trials_part1=2, trials_part2=2, attention_checks=False, slug=PENDING
    )
    with pytest.MonkeyPatch.context() as mp:
        apply_settings(mp, **_settings(tmp))
        migrate()
        with session_scope() as session:
            builder.create_study(session, get_settings(), spec, photo_files(3), check_available=False)
        reset_caches()
    port = free_port()
    server = Proc(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        child_env(**_settings(tmp)),
        tmp / "serve.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        yield f"http://127.0.0.1:{port}", tmp
    finally:
        server.stop()


@pytest.fixture(scope="module")
def open_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An open real-or-colorized study (fake colorizations ready); its server's address."""
    from backend.study import builder

    spec = builder.StudySpec(
        title="Results", methods=["cnn"], trials_part1=3, trials_part2=0, attention_checks=False, slug=OPEN
    )
    yield from serve_study(tmp_path_factory.mktemp("a11y-open"), spec, photo_files(4))


def log_in(page: Any, base: str, slug: str) -> None:
    page.goto(f"{base}/admin/studies/{slug}")
    page.fill("#password", ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/admin/studies/{slug}")
    page.evaluate(RECORD)


def focused(page: Any, attribute: str) -> str | None:
    return page.evaluate(f"document.activeElement.getAttribute({attribute!r})")  # type: ignore[no-any-return]


def test_stimuli_panel_keeps_focus_and_says_what_changed(pending, page) -> None:  # type: ignore[no-untyped-def]
    base, tmp = pending
    log_in(page, base, PENDING)
    stimuli = page.locator("#stimuli")
    expect(stimuli).to_have_attribute("data-live", "true")
    assert not stimuli.evaluate("e => e.hasAttribute('aria-live')")  # not a live region any more
    status = page.locator("#stimuli-status")
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_text("")  # nothing said at load

    # Keyboard focus on "Copy"; a refresh that brings nothing new changes nothing (same nodes, same focus).
    copy = page.get_by_role("button", name="Copy")
    copy.focus()
    page.evaluate("document.getElementById('readiness').probe = 1")
    page.wait_for_function("() => window.refreshes.stimuli.length >= 1", timeout=10_000)
    assert page.evaluate("window.refreshes.stimuli[0]") is False
    assert page.evaluate("document.getElementById('readiness').probe") == 1
    assert focused(page, "data-copy") == "participant-link"

    # The colorizations finish: the panel follows, focus stays on "Copy", and the status says it once.
    _finish_colorizations(tmp)
    ready = re.compile(r"All \d+ stimuli are ready")
    expect(page.locator("#readiness")).to_contain_text(ready, timeout=30_000)
    expect(stimuli).to_have_attribute("data-live", "false")
    expect(page.get_by_role("button", name="Preview as a participant")).to_be_visible()
    assert page.evaluate("window.refreshes.stimuli.some(Boolean)")
    assert focused(page, "data-copy") == "participant-link"
    expect(status).to_have_text(re.compile(r"^All \d+ stimuli are ready\.$"))


def test_results_refresh_keeps_focus_and_rows_name_their_participant(open_study, page, browser) -> None:  # type: ignore[no-untyped-def]
    base = open_study
    taker_context = browser.new_context()
    taker = taker_context.new_page()
    try:
        taker.goto(f"{base}/study/{OPEN}?participant={PARTICIPANT}")
        taker.get_by_role("button", name="I agree to take part").click()
        taker.get_by_role("button", name="Begin", exact=True).click()
        expect(taker.locator("#answers-part1 button.answer").first).to_be_enabled()

        log_in(page, base, OPEN)
        results = page.locator("#results")
        assert not results.evaluate("e => e.hasAttribute('aria-live')")
        status = page.locator("#results-status")
        expect(status).to_have_attribute("role", "status")

        # Every button of the participant's row says whose row it acts on.
        row = page.locator("#participants tbody tr")
        expect(row).to_have_count(1)
        for label in ("Exclude", "Returned", "Timed out", "Release", "Delete"):
            name = f"{label} participant {PARTICIPANT}"
            expect(row.get_by_role("button", name=name, exact=True)).to_be_visible()

        # The per-photo breakdown, opened from the keyboard, keeps focus through an unchanged refresh...
        summary = results.locator("details.per-photo > summary")
        summary.focus()
        page.keyboard.press("Enter")
        expect(results.locator("details.per-photo")).to_have_attribute("open", "")
        page.evaluate("document.querySelector('#results details.per-photo > summary').probe = 1")
        page.wait_for_function("() => window.refreshes.results.length >= 1", timeout=15_000)
        assert page.evaluate("window.refreshes.results.some(Boolean)") is False
        assert page.evaluate("document.activeElement.probe") == 1  # the same node: nothing was swapped
        said = status.inner_text()

        # ...and through one that redraws it (the participant answered): the new summary takes focus, the
        # breakdown stays open, and the status says when the results changed.
        taker.keyboard.press("c")
        expect(taker.locator(".trial-meta")).to_have_text("Image 2 of 3")
        page.wait_for_function("() => window.refreshes.results.some(Boolean)", timeout=25_000)
        assert page.evaluate("document.activeElement.matches('#results details.per-photo > summary')")
        assert page.evaluate("document.activeElement.probe") is None  # a new node, focused again
        expect(results.locator("details.per-photo")).to_have_attribute("open", "")
        expect(results.locator(".stat-grid div", has_text="Answers").locator("dd")).to_have_text("1")
        expect(status).to_have_text(re.compile(r"^Results updated at .+\.$"))
        assert status.inner_text() != said
    finally:
        taker_context.close()
