"""The researcher's side in Chromium, against a real `colorlab serve` + worker: log in, build a study from
uploaded photos on /admin/studies/new (a form missing its photos comes back with the error and the entries
kept, and creates nothing; an error after photos were chosen keeps them chosen), watch its colorizations
finish (the page follows them without a reload), open it, revise its consent text (a new version, which a
participant then sees), download an export, close it and delete it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.backend.study.conftest import ADMIN_PASSWORD, SECRET_KEY
from tests.browser.conftest import Stack, start_stack
from tests.conftest import photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def admin_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory.mktemp("admin"), worker=True, ADMIN_PASSWORD=ADMIN_PASSWORD, SECRET_KEY=SECRET_KEY
    )


def test_researcher_builds_opens_and_exports_a_study(admin_stack, page) -> None:  # type: ignore[no-untyped-def]
    base = admin_stack.base_url
    page.goto(f"{base}/admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New study").click()
    page.wait_for_url(f"{base}/admin/studies/new")

    # No photos: the form comes back with the error, the entries kept, and no study is made.
    page.get_by_label("Title").fill("Lakes and birds")
    page.get_by_label("Address").fill("lakes-and-birds")
    page.locator('input[name="methods"][value="cnn"]').check()
    page.locator('input[name="methods"][value="gan"]').check()
    page.get_by_role("button", name="Create study and queue colorizations").click()
    expect(page.get_by_role("alert")).to_contain_text("upload at least one colour photo")
    expect(page.get_by_label("Title")).to_have_value("Lakes and birds")
    expect(page.locator('input[name="methods"][value="cnn"]')).to_be_checked()
    assert page.request.get(f"{base}/admin/studies/lakes-and-birds").status == 404

    # Too few photos for 5 trials: the error shows above the form and the chosen photos stay chosen, so
    # mending the trials and sending again needs no second pick of the files.
    photos: list[Path] = [photo(prefix) for prefix in ("975_", "097_", "001_")]
    page.get_by_label("Colour photos").set_input_files([str(p) for p in photos])
    page.get_by_role("button", name="Create study and queue colorizations").click()
    expect(page.get_by_role("alert")).to_contain_text("3 photos are too few")
    assert page.evaluate("document.getElementById('photos').files.length") == 3
    assert page.request.get(f"{base}/admin/studies/lakes-and-birds").status == 404
    page.get_by_label("Trials in part 1").fill("2")
    page.get_by_label("Trials in part 2").fill("2")
    page.get_by_role("button", name="Create study and queue colorizations").click()
    page.wait_for_url(f"{base}/admin/studies/lakes-and-birds")
    expect(page.locator("h1")).to_contain_text("Lakes and birds")
    expect(page.locator("h1 .badge")).to_have_text("draft")
    expect(page.locator(".lead").first).to_contain_text("Methods: cnn, gan · 2 + 2 trials")

    # The worker colorizes the photos (six jobs: seconds); the panel follows without a reload.
    expect(page.locator("#stimuli")).to_have_attribute("data-live", "true")
    expect(page.get_by_role("button", name="Preview as a participant")).to_have_count(0)
    expect(page.get_by_role("button", name="Open study")).to_be_disabled()
    page.evaluate("window.sameDocument = true")
    expect(page.locator("#readiness")).to_contain_text(
        re.compile(r"All \d+ stimuli are ready"), timeout=60_000
    )
    expect(page.locator("#stimuli")).to_have_attribute("data-live", "false")
    expect(page.get_by_role("button", name="Preview as a participant")).to_be_visible()
    assert page.evaluate("window.sameDocument === true")  # no reload happened
    page.get_by_role("button", name="Open study").click()
    expect(page.locator("h1 .badge")).to_have_text("open")
    expect(page.get_by_role("button", name="Close study")).to_be_visible()

    # Editing the consent text of an open study makes a new version, which new participants see.
    texts = page.locator("#texts")
    expect(texts).to_contain_text("Version 1 is shown now")
    texts.get_by_label("Consent").fill("You may stop at any time. (Revised consent.)")
    page.get_by_role("button", name="Save texts").click()
    expect(texts).to_contain_text("Version 2 is shown now")
    link = page.locator('a[href="/study/lakes-and-birds"]')
    expect(link).to_contain_text("/study/lakes-and-birds")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()  # the participant link, in one click
    expect(page.locator('[data-copy-status="participant-link"]')).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()").endswith("/study/lakes-and-birds")
    participant = page.context.browser.new_page()  # another browser context: a participant, not the admin
    participant.goto(f"{base}/study/lakes-and-birds")
    expect(participant.get_by_text("(Revised consent.)")).to_be_visible()
    participant.close()

    # A consent pasted past its limit is cut by the form (maxlength): saved, never a 422 page that loses it.
    consent = texts.get_by_label("Consent")
    consent.fill("You may stop at any time. " * 1000)
    assert consent.evaluate("el => el.value.length") == 10_000
    page.get_by_role("button", name="Save texts").click()
    expect(texts).to_contain_text("Version 3 is shown now")

    # An export downloads, with a row per stimulus.
    with page.expect_download() as download:
        page.locator('a[href$="/export/stimuli.csv"]').click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {row["condition"] for row in rows} == {"real", "cnn", "gan"}, rows[:2]
    assert len({row["photo"] for row in rows}) == len(photos)
    assert {row["job_status"] for row in rows if row["condition"] != "real"} == {"done"}

    # The results panel's own address, bookmarked, leads to the whole page.
    page.goto(f"{base}/admin/studies/lakes-and-birds/results?exclude=true")
    page.wait_for_url(f"{base}/admin/studies/lakes-and-birds?exclude=true")
    expect(page.locator("h1")).to_contain_text("Lakes and birds")
    expect(page.locator('a[href$="/export/summary.csv?exclude=true"]')).to_have_count(1)
    expect(page.locator("#export-view")).to_contain_text("failed an attention check are left out")
    expect(page.locator("#comparisons tbody tr")).to_have_count(3)  # real, cnn, gan: three pairs
    expect(page.locator("#comparisons tbody tr").first).to_contain_text("Real photo − cnn")

    # Closing asks first: dismissed, the study stays open; accepted, it closes.
    asked: list[str] = []

    def answer(dialog, accept: bool) -> None:  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.get_by_role("button", name="Close study").click()
    expect(page.locator("h1 .badge")).to_have_text("open")
    other = page.context.new_page()  # a second tab, still showing the study open
    other.goto(f"{base}/admin/studies/lakes-and-birds")
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_role("button", name="Close study").click()
    expect(page.locator("h1 .badge")).to_have_text("closed")
    assert len(asked) == 2 and "New participants are refused at once" in asked[0]
    expect(page.locator("#closed-note")).to_contain_text(re.compile(r"Closed \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(page.locator("#closed-note")).to_contain_text("participants who had started may answer until")
    # Closing it again there is refused on the study page, at the study's address (a reload resends nothing).
    other.once("dialog", lambda dialog: dialog.accept())
    other.get_by_role("button", name="Close study").click()
    expect(other.locator(".notice-error")).to_contain_text("the study is closed, not open")
    assert other.url == f"{base}/admin/studies/lakes-and-birds"
    other.reload()
    expect(other.locator("h1 .badge")).to_have_text("closed")
    expect(other.locator(".notice-error")).to_have_count(0)
    other.close()

    # Closed, it can be deleted, after a confirmation naming what goes with it.
    page.once("dialog", lambda dialog: answer(dialog, False))
    page.get_by_role("button", name="Delete study").click()
    expect(page.locator("h1")).to_contain_text("Lakes and birds")
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_role("button", name="Delete study").click()
    page.wait_for_url(f"{base}/admin?deleted=lakes-and-birds")
    expect(page.locator("#deleted-notice")).to_contain_text("lakes-and-birds")
    expect(page.locator('a[href="/admin/studies/lakes-and-birds"]')).to_have_count(0)
    assert len(asked) == 4 and "participant(s)' answers and its photos" in asked[2]
