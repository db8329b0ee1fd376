"""Trust in Chromium against a real `colorlab serve` on PostgreSQL (README, "Identity"): a Prolific
participant resumes in a second browser context with the same PROLIFIC_PID + SESSION_ID, a hijack with the
id alone fails, a lost cookie recovers through the resume path, the completion code survives a reload with
a copy button and a "Return to Prolific" link; the researcher previews the study (nothing recorded),
excludes a participant and logs out, after which a copy of the session cookie no longer works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.db import session_scope
from backend.study.models import Participant
from tests.backend.study.conftest import ADMIN_PASSWORD, SECRET_KEY
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import apply_settings, child_env, free_port, migrate, wait_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PAIR = "PROLIFIC_PID=60aa0bb1cc2dd3ee4ff5a6b7&STUDY_ID=st&SESSION_ID=se-1"


def test_resume_hijack_code_preview_and_logout_in_chromium(
    postgres_url, monkeypatch, make_study, spawn, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var", DATABASE_URL=postgres_url)
    migrate()
    slug = make_study(photos=4, methods=("cnn",), trials=(3, 2), completion_code="CODE-77")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(
        DATA_DIR=tmp_path / "var",
        DATABASE_URL=postgres_url,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        SECRET_KEY=SECRET_KEY,
    )
    server = spawn("serve", "--port", str(port), env=env)
    wait_http(f"{base}/healthz", timeout=60)

    problems: list[str] = []

    def watch(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.on("pageerror", lambda exc: problems.append(f"{name}: {exc}"))

    def wait_trial(page, part: int, index: int) -> None:  # type: ignore[no-untyped-def]
        expect(page.locator("#trial-part")).to_have_text(f"Part {part}")
        expect(page.locator("#trial-index")).to_have_text(str(index))
        expect(page.locator("button.answer").first).to_be_enabled()

    def answer(page) -> None:  # type: ignore[no-untyped-def]
        ready = page.locator("#begin-part2:visible, button.answer:visible:enabled").first
        expect(ready).to_be_visible()
        if page.locator("#begin-part2").is_visible():
            page.get_by_role("button", name="Begin part 2").click()
        button = page.locator("button.answer:visible:enabled").first
        expect(button).to_be_visible()
        button.click()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        first = browser.new_context()
        first.set_default_timeout(20_000)
        laptop = first.new_page()
        watch(laptop, "laptop")
        try:
            laptop.goto(f"{base}/study/{slug}?{PAIR}")
            laptop.get_by_role("button", name="I agree to take part").click()
            laptop.get_by_role("button", name="Begin part 1").click()
            wait_trial(laptop, 1, 1)
            laptop.keyboard.press("r")
            wait_trial(laptop, 1, 2)

            # a stranger with the id alone: refused, nothing shown
            stranger_ctx = browser.new_context()
            stranger = stranger_ctx.new_page()
            res = stranger.goto(f"{base}/study/{slug}?PROLIFIC_PID=60aa0bb1cc2dd3ee4ff5a6b7")
            assert res is not None and res.status == 403
            expect(stranger.locator("h1")).to_have_text("This session belongs to someone else")
            expect(stranger.locator("#stimulus")).to_have_count(0)
            stranger_ctx.close()

            # the owner's second device with Prolific's link: straight back to trial 2 (no consent again)
            second = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
            second.set_default_timeout(20_000)
            phone = second.new_page()
            watch(phone, "phone")
            phone.goto(f"{base}/study/{slug}?{PAIR}")
            wait_trial(phone, 1, 2)
            phone.keyboard.press("c")
            wait_trial(phone, 1, 3)

            # the laptop's cookie was superseded: its next answer recovers through the resume path
            laptop.keyboard.press("r")
            wait_trial(laptop, 1, 3)  # resumed at the trial the phone reached, nothing lost
            # a lost cookie (cleared) also resumes through Prolific's link
            second.clear_cookies()
            phone.reload()
            wait_trial(phone, 1, 3)
            for _ in range(3):
                answer(phone)
            expect(phone.locator("#phase-done")).to_be_visible()
            expect(phone.locator("#completion-code")).to_have_text("CODE-77")
            link = phone.get_by_role("link", name="Return to Prolific")
            expect(link).to_have_attribute("href", "https://app.prolific.com/submissions/complete?cc=CODE-77")
            phone.get_by_role("button", name="Copy").click()
            expect(phone.locator("#copy-status")).to_have_text(re.compile("Copied|Selected"))
            phone.reload()  # the code survives a reload
            expect(phone.locator("#completion-code")).to_have_text("CODE-77")
            expect(phone.locator("#receipt")).to_have_text(re.compile(r"^[A-Z2-9]{8}$"))
            second.close()

            # the researcher: preview (nothing recorded), exclude the participant, log out
            desk = browser.new_context(viewport={"width": 1280, "height": 900})
            desk.set_default_timeout(20_000)
            admin = desk.new_page()
            watch(admin, "admin")
            admin.goto(f"{base}/admin/studies/{slug}")
            admin.fill("#password", ADMIN_PASSWORD)
            admin.get_by_role("button", name="Log in").click()
            expect(admin.locator("#identity-note")).to_contain_text("one per browser only")
            admin.get_by_role("button", name="Preview as a participant").click()
            expect(admin.locator("#preview-banner")).to_be_visible()
            # the preview shows the consent text as participants see it, then the instructions
            expect(admin.locator("#phase-consent")).to_be_visible()
            admin.get_by_role("button", name="I agree to take part").click()
            admin.get_by_role("button", name="Begin part 1").click()
            for _ in range(5):
                answer(admin)
            expect(admin.locator("#phase-done")).to_be_visible()
            # its last page says it recorded nothing (not "Your answers have been saved") and leads back
            expect(admin.locator("#done-saved")).to_be_hidden()
            expect(admin.locator("#done-preview")).to_contain_text("nothing was recorded")
            expect(admin.locator("#done-reload")).to_be_hidden()  # a preview is gone once done
            with session_scope() as s:
                assert s.scalar(select(func.count()).select_from(Participant)) == 1  # the preview is gone
            admin.get_by_role("link", name="Back to the study").click()
            admin.wait_for_url(f"{base}/admin/studies/{slug}")
            expect(admin.locator("table.participants tbody tr")).to_have_count(1)
            admin.locator('button[data-action="exclude"]').click()
            expect(admin.locator("table.participants .badge")).to_have_text("excluded")
            stolen = [c for c in desk.cookies() if c["name"] == "colorlab_admin"]
            admin.get_by_role("button", name="Log out").click()
            expect(admin.locator("#password")).to_be_visible()
            thief_ctx = browser.new_context()
            thief_ctx.add_cookies(stolen)
            thief = thief_ctx.new_page()
            thief.goto(f"{base}/admin/studies/{slug}")
            expect(thief.locator("#password")).to_be_visible()  # the copied cookie was revoked
            thief_ctx.close()
            desk.close()
        except Exception:
            laptop.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(server.log()[-3000:])
            raise
        finally:
            first.close()
            browser.close()
    assert not problems, problems
    with session_scope() as s:
        person = s.scalars(select(Participant)).one()
        assert person.status == "excluded" and person.completed_at is not None
