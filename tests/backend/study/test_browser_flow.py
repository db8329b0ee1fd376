"""The whole participant flow in headless Chromium (Debian chromium via Playwright) on a phone-sized screen,
against a real `colorlab serve`: consent, instructions, part 1 by keyboard and by tap, a reload that resumes,
part 2 (stars), thanks with the completion code and the redirect; then the researcher's results page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.db import session_scope
from backend.study.models import Participant, Trial
from tests.backend.study.conftest import ADMIN_PASSWORD, SECRET_KEY
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import child_env, free_port, wait_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_participant_flow_in_chromium(sqlite_db, make_study, spawn, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    slug = make_study(
        photos=5,
        methods=("cnn", "fusion"),
        trials=(4, 3),
        completion_code="PROLIFIC-OK",
        redirect_url=f"{base}/healthz?completed=1",
    )
    env = child_env(DATA_DIR=tmp_path / "var", ADMIN_PASSWORD=ADMIN_PASSWORD, SECRET_KEY=SECRET_KEY)
    server = spawn("serve", "--port", str(port), env=env)
    wait_http(f"{base}/healthz", timeout=60)

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2
        )
        phone.set_default_timeout(15_000)
        page = phone.new_page()
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text
                else None
            ),
        )
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        try:
            page.goto(f"{base}/study/{slug}?PROLIFIC_PID=60aa0bb1cc2dd3ee4ff5a6b7&STUDY_ID=st&SESSION_ID=se")
            expect(page.locator("#phase-consent")).to_be_visible()
            page.get_by_role("button", name="I agree to take part").tap()
            expect(page.locator("#phase-instructions")).to_be_visible()
            expect(
                page.locator("#phase-instructions .pointer-only")
            ).to_be_hidden()  # a touch phone: no keyboard shortcuts
            page.get_by_role("button", name="Begin part 1").click()

            def wait_trial(part: int, index: int) -> None:
                expect(page.locator("#trial-part")).to_have_text(f"Part {part}")
                expect(page.locator("#trial-index")).to_have_text(str(index))
                expect(page.locator("button.answer").first).to_be_enabled()  # the image has loaded

            wait_trial(1, 1)
            assert page.evaluate("document.getElementById('stimulus').naturalWidth") > 0
            # shown from the state itself: no request for the image
            src = page.evaluate("document.getElementById('stimulus').src")
            assert src.startswith("data:image/jpeg;base64,")
            # the answer buttons fit the phone screen side by side with the image
            box = page.locator("#answers-part1").bounding_box()
            assert box and box["width"] <= 390
            page.wait_for_timeout(150)
            page.keyboard.press("r")  # keyboard shortcut: real
            wait_trial(1, 2)
            # each trial starts at its question: the next Tab reaches the first answer, not a stale one
            expect(page.locator("#trial-question")).to_be_focused()
            page.get_by_role("button", name=re.compile("Colorized by a computer")).tap()
            wait_trial(1, 3)
            page.reload()  # resumes where the participant was
            wait_trial(1, 3)
            page.keyboard.press("c")
            wait_trial(1, 4)
            page.keyboard.press("r")
            expect(page.locator("#phase-part2-intro")).to_be_visible()
            expect(page.locator(".rating-legend")).to_contain_text("Fully coloured, but not saturated")
            page.get_by_role("button", name="Begin part 2").click()
            wait_trial(2, 1)
            expect(page.locator("#trial-question")).to_have_text("How well is this image coloured?")
            page.keyboard.press("3")
            wait_trial(2, 2)
            page.locator('button[data-rating="4"]').tap()
            wait_trial(2, 3)
            page.keyboard.press("1")
            expect(page.locator("#phase-done")).to_be_visible()
            expect(page.locator("#completion-code")).to_have_text("PROLIFIC-OK")
            expect(page.locator("#redirect-countdown")).to_contain_text("Going back to")
            page.locator("#redirect-link").click()  # a countdown to read the code, or go at once
            page.wait_for_url(re.compile(r"/healthz\?completed=1"), timeout=10_000)
            # coming back: the same participant sees the code again (never a second attempt)
            page.goto(f"{base}/study/{slug}")
            expect(page.locator("#completion-code")).to_have_text("PROLIFIC-OK")

            # the researcher sees the answers as charts
            desk = browser.new_context(viewport={"width": 1280, "height": 900})
            admin = desk.new_page()
            admin.on("pageerror", lambda exc: problems.append(f"admin page error: {exc}"))
            admin.on(
                "console",
                lambda m: problems.append(f"admin console: {m.text}") if m.type == "error" else None,
            )
            admin.goto(f"{base}/admin/studies/{slug}")
            expect(admin.locator("#password")).to_be_visible()  # redirected to the login form
            admin.fill("#password", ADMIN_PASSWORD)
            admin.get_by_role("button", name="Log in").click()
            expect(admin.locator("svg.chart")).to_have_count(2)
            expect(admin.locator(".stat-grid")).to_contain_text("Completed")
            desk.close()
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(server.log()[-3000:])
            raise
        finally:
            phone.close()
            browser.close()
    assert not problems, problems
    assert failed == [], failed
    with session_scope() as s:
        p = s.scalars(select(Participant)).one()
        assert p.external_id == "60aa0bb1cc2dd3ee4ff5a6b7" and p.completed_at is not None
        trials = s.scalars(select(Trial).order_by(Trial.part, Trial.position)).all()
        assert [t.response for t in trials if t.part == 1] == ["real", "fake", "fake", "real"]
        assert [t.rating for t in trials if t.part == 2] == [3, 4, 1]
        assert all(t.response_ms is not None and t.response_ms > 0 for t in trials)
