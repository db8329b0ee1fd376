"""Accessibility of every page a person uses, checked by axe-core (WCAG 2.0/2.1, levels A and AA) in headless
Chromium against real server and worker processes: the colorizing pages (upload with its errors, a method, a
reference, the exemplar's presets and options, a batch chosen; a job running, cancelled and finished, with its
"Fix colours" and "Adjust the colours" panels and a hint placed; a batch; a comparison; the history; the
methods; the 404 page), the study a participant takes (consent, instructions, a trial of each part, the
thanks, an unknown study) and the researcher's area (login, studies, new study, a study colorizing and one
with results and participants). The upload, job and trial pages are checked on a phone too. A failure lists
each violation (rule, impact, help, the elements at fault) of every page checked before the test stopped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.backend.study.conftest import ADMIN_PASSWORD, SECRET_KEY
from tests.browser.conftest import Stack, colorize_lakeside, start_stack, submit_small_exemplar
from tests.conftest import photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = Axe()
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
# (rule, CSS target as axe reports it): why that rule cannot apply to that one element; nothing else is waived
EXCEPTIONS: dict[tuple[str, str], str] = {}
SLUG = "a11y-study"


@dataclass
class Audit:
    """Runs axe on a page in a named state and keeps what it finds, so that one run reports every page."""

    found: list[str] = field(default_factory=list)

    def check(self, page, where: str) -> None:  # type: ignore[no-untyped-def]
        page.wait_for_load_state("load")
        for violation in AXE.run(page, options=AXE_OPTIONS).response["violations"]:
            targets = [
                " ".join(map(str, node["target"]))
                for node in violation["nodes"]
                if (violation["id"], " ".join(map(str, node["target"]))) not in EXCEPTIONS
            ]
            if targets:
                self.found.append(
                    f"[{where}] {violation['id']} ({violation['impact']}): {violation['help']}\n"
                    + "".join(f"    {target}\n" for target in targets)
                )

    def assert_clean(self) -> None:
        report = "".join(self.found)
        assert not self.found, f"{len(self.found)} accessibility violation(s):\n{report}"


@pytest.fixture
def audit() -> Iterator[Audit]:
    """An audit per test; what it found is printed even when the test stops early on another failure."""
    found = Audit()
    yield found
    if found.found:
        print("".join(found.found))


@pytest.fixture(scope="module")
def a11y_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory.mktemp("a11y"), worker=True, ADMIN_PASSWORD=ADMIN_PASSWORD, SECRET_KEY=SECRET_KEY
    )


@pytest.fixture(scope="module")
def done_job(a11y_stack: Stack) -> str:
    """A finished job of the default method (its page offers "Fix colours" and "Adjust the colours")."""
    return colorize_lakeside(a11y_stack.base_url)


def choose_photo_and_method(page, method: str) -> None:  # type: ignore[no-untyped-def]
    page.set_input_files("#image", str(photo("001_")))
    expect(page.locator("#image-drop .dropzone-preview img")).to_be_visible()
    page.locator(f"label[data-method={method}]").click()
    expect(page.locator(f"#method-{method}")).to_be_checked()


def check_upload_page(page, base: str, audit: Audit, where: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/")
    expect(page.locator("#method-cnn")).to_be_enabled()
    page.locator("#submit").click()  # nothing chosen: the errors show
    expect(page.locator("#image-error")).to_be_visible()
    audit.check(page, f"{where}upload, errors shown")
    choose_photo_and_method(page, "cnn")
    audit.check(page, f"{where}upload, cnn chosen")
    page.locator("label[data-method=unet-bins-reference]").click()
    expect(page.locator("#reference-section")).to_be_visible()
    expect(page.locator('.ref-option[data-source="example"]').first).to_be_visible()
    audit.check(page, f"{where}upload, reference shown")
    page.set_input_files("#reference", str(photo("975_")))
    expect(page.locator("#reference-drop .dropzone-preview img")).to_be_visible()
    audit.check(page, f"{where}upload, reference chosen")
    page.locator("label[data-method=exemplar]").click()  # presets, and the options unfolded
    expect(page.locator("#presets-section")).to_be_visible()
    if not page.locator("#options-section").evaluate("details => details.open"):
        page.locator("#options-section summary").click()
    expect(page.locator("#options .field").first).to_be_visible()
    audit.check(page, f"{where}upload, exemplar presets and options")


def check_job_page(page, base: str, job_id: str, audit: Audit, where: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/jobs/{job_id}/view")
    expect(page.locator("#job-status")).to_have_text("Done", timeout=30_000)
    expect(page.locator("#fix-section")).to_be_visible()
    expect(page.locator("#adjust-section")).to_be_visible()
    expect(page.locator("#fix-palette .fix-swatch").first).to_be_visible()
    audit.check(page, f"{where}job, done")


def test_colorizing_pages(a11y_stack, done_job, page, audit) -> None:  # type: ignore[no-untyped-def]
    base = a11y_stack.base_url
    check_upload_page(page, base, audit, "")

    check_job_page(page, base, done_job, audit, "")
    # A hint placed under "Fix colours": the job runs again; the hint list and "Colour here now" show.
    img = page.locator("#fix-img")
    box = img.bounding_box()
    assert box is not None
    img.click(position={"x": 0.15 * box["width"], "y": 0.25 * box["height"]})  # the spot, then its colour
    page.locator("#fix-palette .fix-swatch").first.click()
    expect(page.locator("#fix-list li")).to_have_count(1)
    expect(page.locator("#fix-state")).to_have_text("Updated", timeout=60_000)
    audit.check(page, "job, a colour hint placed")

    # A batch and a comparison, made from this browser (its cookie), so that the history lists them too.
    page.goto(base + "/")
    page.set_input_files("#batch-files", [str(photo(prefix)) for prefix in ("001_", "002_")])
    expect(page.locator("#batch-count")).to_contain_text("2 files")
    page.locator("label[data-method=cnn]").click()
    audit.check(page, "upload, a batch chosen")
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/batches/[\w-]+/view$"))
    expect(page.locator('#batch-grid .job-card[data-status="done"]')).to_have_count(2, timeout=60_000)
    audit.check(page, "batch, done")
    page.locator("#batch-grid .job-card").first.locator("button").click()
    expect(page.locator("#viewer")).to_be_visible()
    audit.check(page, "batch, a photo's before/after open")

    page.goto(base + "/compare")
    expect(page.locator("#method-cnn")).to_be_checked()
    audit.check(page, "compare form")
    page.set_input_files("#image", str(photo("975_")))
    expect(page.locator("#image-drop .dropzone-preview img")).to_be_visible()
    checked = page.locator("#method-list input:checked")
    for name in [box.get_attribute("value") for box in checked.all()]:
        if name not in ("cnn", "gan"):  # two methods are enough here
            page.locator(f"label[data-method={name}]").click()
            expect(page.locator(f"#method-{name}")).not_to_be_checked()
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/compare/[\w-]+/view$"))
    expect(page.locator("#cmp-status")).to_have_text("Done", timeout=60_000)
    expect(page.locator('#metrics-body td[data-metric="auc"]')).to_have_count(2, timeout=30_000)
    audit.check(page, "comparison, done")
    page.locator('.cmp-card[data-method="cnn"] .cmp-thumb').click()
    expect(page.locator("#viewer")).to_be_visible()
    audit.check(page, "comparison, a result enlarged")

    page.goto(base + "/history")
    expect(page.locator("#job-grid .group-card")).to_have_count(2)  # the batch and the comparison
    audit.check(page, "history with items")
    page.get_by_label("Select all").check()
    expect(page.locator("#delete-selected")).to_be_enabled()
    audit.check(page, "history, all selected")

    page.goto(base + "/methods/view")
    audit.check(page, "methods")

    response = page.goto(base + "/jobs/nope/view")
    assert response is not None and response.status == 404
    audit.check(page, "404")
    audit.assert_clean()


def test_running_then_cancelled_job(a11y_stack, page, audit) -> None:  # type: ignore[no-untyped-def]
    """The exemplar (iterative): its live progress and preview, then the page of the cancelled job."""
    page.goto(a11y_stack.base_url + "/")
    choose_photo_and_method(page, "exemplar")
    submit_small_exemplar(page)
    expect(page.locator("#iteration")).to_have_text(re.compile(r"^[1-9]\d* / 500$"), timeout=60_000)
    expect(page.locator("#preview")).to_have_attribute("src", re.compile(r"/preview\.png\?"), timeout=20_000)
    audit.check(page, "job, running with a live preview")
    page.locator("#cancel").click()
    expect(page.locator("#stopped-section")).to_be_visible()
    audit.check(page, "job, cancelled")
    audit.assert_clean()


def test_phone_pages(a11y_stack, done_job, phone_page, audit) -> None:  # type: ignore[no-untyped-def]
    check_upload_page(phone_page, a11y_stack.base_url, audit, "phone: ")
    check_job_page(phone_page, a11y_stack.base_url, done_job, audit, "phone: ")
    audit.assert_clean()


def answer_trial(page, part: int, index: int) -> None:  # type: ignore[no-untyped-def]
    expect(page.locator("#trial-part")).to_have_text(f"Part {part}")
    expect(page.locator("#trial-index")).to_have_text(str(index))
    expect(page.locator("button.answer").first).to_be_enabled()  # the image has loaded


def test_study_and_researcher_pages(a11y_stack, page, phone_page, audit) -> None:  # type: ignore[no-untyped-def]
    base = a11y_stack.base_url
    page.goto(f"{base}/admin")
    expect(page.get_by_label("Password")).to_be_visible()
    audit.check(page, "admin login")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check(page, "admin login, refused")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="New study")).to_be_visible()
    audit.check(page, "studies, none yet")
    page.get_by_role("link", name="New study").click()
    page.wait_for_url(f"{base}/admin/studies/new")
    audit.check(page, "new study")

    page.get_by_label("Title").fill("Accessible study")
    page.get_by_label("Address").fill(SLUG)
    page.locator('input[name="methods"][value="cnn"]').check()
    page.get_by_role("button", name="Create study and queue colorizations").click()  # no photos: refused
    expect(page.get_by_role("alert")).to_contain_text("upload at least one colour photo")
    audit.check(page, "new study, refused")
    page.get_by_label("Colour photos").set_input_files([str(photo(p)) for p in ("975_", "097_", "001_")])
    page.get_by_label("Trials in part 1").fill("2")
    page.get_by_label("Trials in part 2").fill("2")
    page.get_by_role("button", name="Create study and queue colorizations").click()
    page.wait_for_url(f"{base}/admin/studies/{SLUG}")
    audit.check(page, "study, colorizing")
    expect(page.locator("#readiness")).to_contain_text(
        re.compile(r"All \d+ stimuli are ready"), timeout=60_000
    )
    page.get_by_role("button", name="Open study").click()
    expect(page.locator("h1 .badge")).to_have_text("open")

    # A participant on a computer: consent, instructions, part 1, part 2, thanks.
    desk = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    taker = desk.new_page()
    taker.goto(f"{base}/study/{SLUG}")
    expect(taker.locator("#phase-consent")).to_be_visible()
    audit.check(taker, "study consent")
    taker.get_by_role("button", name="I agree to take part").click()
    expect(taker.locator("#phase-instructions")).to_be_visible()
    audit.check(taker, "study instructions")
    taker.get_by_role("button", name="Begin part 1").click()
    answer_trial(taker, 1, 1)
    audit.check(taker, "study part-1 trial")
    taker.get_by_role("button", name=re.compile("Real photo")).click()
    answer_trial(taker, 1, 2)
    taker.get_by_role("button", name=re.compile("Colorized by a computer")).click()
    expect(taker.locator("#phase-part2-intro")).to_be_visible()
    audit.check(taker, "study part-2 introduction")
    taker.get_by_role("button", name="Begin part 2").click()
    answer_trial(taker, 2, 1)
    audit.check(taker, "study part-2 trial")
    taker.locator('button[data-rating="3"]').click()
    answer_trial(taker, 2, 2)
    taker.locator('button[data-rating="2"]').click()
    expect(taker.locator("#phase-done")).to_be_visible()
    audit.check(taker, "study done")
    desk.close()

    # A participant on a phone, still in part 1.
    phone_page.goto(f"{base}/study/{SLUG}")
    phone_page.get_by_role("button", name="I agree to take part").tap()
    phone_page.get_by_role("button", name="Begin part 1").tap()
    answer_trial(phone_page, 1, 1)
    audit.check(phone_page, "phone: study part-1 trial")
    phone_page.get_by_role("button", name=re.compile("Real photo")).tap()
    answer_trial(phone_page, 1, 2)
    phone_page.get_by_role("button", name=re.compile("Real photo")).tap()
    phone_page.get_by_role("button", name="Begin part 2").tap()
    answer_trial(phone_page, 2, 1)
    audit.check(phone_page, "phone: study part-2 trial")

    page.goto(f"{base}/admin/studies/{SLUG}")
    expect(page.locator("svg.chart").first).to_be_visible()
    audit.check(page, "study with results and participants")
    page.goto(f"{base}/admin")
    expect(page.locator(f'a[href="/admin/studies/{SLUG}"]')).to_be_visible()
    audit.check(page, "studies list")
    response = page.goto(f"{base}/study/no-such-study")
    assert response is not None and response.status == 404
    audit.check(page, "study not found")
    audit.assert_clean()
