"""Layout of the pages at a phone's width (375 × 740, touch) and on a computer, in headless Chromium against
real server and worker processes: no page scrolls sideways on a phone (or a tablet, or a phone on its side),
every control a finger uses is at least 44 px high there, no text field is under 16 px (iOS would zoom),
and the defects a visual review found stay fixed (the hint list's numbers, the study question's focus ring,
the upload page's step numbers, the researcher pages on a phone)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.backend.study.conftest import ADMIN_PASSWORD, SECRET_KEY
from tests.browser.conftest import Stack, _checked_page, colorize_lakeside, start_stack
from tests.conftest import photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLUG = "layout-study"
# What a finger taps: buttons (the small ones too), the main navigation, the history's select boxes, the
# hint colours and hints, the before/after switch, sliders and the comparison cards' links.
TAP_TARGETS = (
    ".button, .site-nav a, .job-select, .fix-swatch, .fix-pick, .segmented label, input[type=range], "
    ".cmp-card-links a, .admin-form input[type=file]"
)
# Every visible tap target lower than 44 px (a sliver of rounding allowed), as "selector text: height".
SMALL_TARGETS = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => { const r = el.getBoundingClientRect(); return r.width && r.height && r.height < 43.5; })
  .map((el) => `${el.tagName.toLowerCase()}.${el.className} "${(el.innerText || el.value || '').trim()}": `
    + Math.round(el.getBoundingClientRect().height))"""


@pytest.fixture(scope="module")
def layout_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory.mktemp("layout"), worker=True, ADMIN_PASSWORD=ADMIN_PASSWORD, SECRET_KEY=SECRET_KEY
    )


@pytest.fixture(scope="module")
def done_job(layout_stack: Stack) -> str:
    return colorize_lakeside(layout_stack.base_url)


@pytest.fixture
def phone(browser, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A small phone: 375 px wide, touch only (the checks of conftest's pages included)."""
    yield from _checked_page(
        browser,
        request,
        viewport={"width": 375, "height": 740},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )


# Every visible text field whose type is under 16 px: iOS zooms the page in when one takes the focus.
SMALL_FIELDS = """() => [...document.querySelectorAll(
    'input:not([type=checkbox]):not([type=radio]):not([type=range]):not([type=file]):not([type=color]), '
    + 'select, textarea')]
  .filter((el) => el.getBoundingClientRect().width && parseFloat(getComputedStyle(el).fontSize) < 15.9)
  .map((el) => `${el.tagName.toLowerCase()}#${el.id}: ${getComputedStyle(el).fontSize}`)"""


def assert_fits_a_phone(page, where: str) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{where}: the page scrolls sideways ({width[0]} px on {width[1]} px)"
    small = page.evaluate(SMALL_TARGETS, TAP_TARGETS)
    assert not small, f"{where}: controls under 44 px high on a touch screen: {small}"
    fields = page.evaluate(SMALL_FIELDS)
    assert not fields, f"{where}: text fields under 16 px (the page zooms when one is focused): {fields}"


def test_phone_pages_fit_and_take_a_finger(layout_stack, done_job, phone) -> None:  # type: ignore[no-untyped-def]
    base = layout_stack.base_url
    lakeside = {"name": "lakeside.jpg", "mimeType": "image/jpeg", "buffer": photo("975_").read_bytes()}
    made = phone.request.post(base + "/colorize", multipart={"image": lakeside})  # in this browser's history
    assert made.status == 202, made.text()
    compared = phone.request.post(base + "/compare", multipart={"image": lakeside})
    assert compared.status == 202, compared.text()

    phone.goto(base + "/")
    expect(phone.locator("label[data-method=cnn]")).to_be_visible()
    assert_fits_a_phone(phone, "upload")
    # the form is screens long: its button stays in reach at the bottom of the screen
    submit = phone.locator("#submit").bounding_box()
    assert submit is not None and submit["y"] + submit["height"] <= 740, submit
    phone.set_input_files("#image", str(photo("001_")))
    phone.locator("label[data-method=exemplar]").tap()
    expect(phone.locator("#presets-section")).to_be_visible()
    expect(phone.locator('.ref-option[data-source="example"]').first).to_be_visible()
    if not phone.locator("#options-section").evaluate("details => details.open"):
        phone.locator("#options-section summary").tap()
    assert_fits_a_phone(phone, "upload, exemplar with its presets and options")

    phone.goto(base + "/history")
    expect(phone.locator("#job-grid .job-card")).to_have_count(2)
    assert_fits_a_phone(phone, "history")
    phone.goto(base + compared.json()["page_url"])
    expect(phone.locator(".cmp-card .cmp-download").first).to_be_visible(timeout=60_000)
    assert_fits_a_phone(phone, "comparison")
    # A tablet and a phone on its side show the scores as a table: it scrolls inside its box, not the page
    # (its hidden "(best)" words once widened the page to 984 px).
    expect(phone.locator(".cmp-table td.is-best").first).to_be_attached(timeout=60_000)
    for size in ({"width": 768, "height": 1024}, {"width": 740, "height": 360}):
        phone.set_viewport_size(size)
        assert_fits_a_phone(phone, f"comparison at {size}")
    phone.set_viewport_size({"width": 375, "height": 740})
    phone.goto(base + "/compare")
    expect(phone.locator("#method-list .method-card").first).to_be_visible()
    assert_fits_a_phone(phone, "compare")
    for path in ("/methods/view", "/no-such-page"):
        phone.goto(base + path)
        assert_fits_a_phone(phone, path)

    # A finished job, with two hints placed: the list beside the photo numbers them as the markers are, and an
    # entry that wraps stays left-aligned under its colour dot.
    phone.goto(f"{base}/jobs/{done_job}/view")
    img = phone.locator("#fix-img")
    expect(img).to_have_attribute("data-loaded-job-id", done_job, timeout=30_000)
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    assert box is not None
    for x, y in ((0.3, 0.3), (0.7, 0.6)):
        img.tap(position={"x": x * box["width"], "y": y * box["height"]})  # the spot, then its colour
        phone.locator("#fix-palette .fix-swatch").first.tap()
        img.scroll_into_view_if_needed()
        phone.wait_for_timeout(200)
    expect(phone.locator("#fix-list li")).to_have_count(2)
    numbers = phone.locator("#fix-list li").evaluate_all(
        "items => items.map((li) => getComputedStyle(li, '::before').content)"
    )
    assert all("counter" in number for number in numbers), numbers
    aligns = phone.locator("#fix-list .fix-pick").evaluate_all(
        "picks => picks.map((pick) => getComputedStyle(pick).textAlign)"
    )
    assert set(aligns) <= {"left", "start"}, aligns
    expect(phone.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
    assert_fits_a_phone(phone, "job, done, with hints")
    # A finger that lands 18 px from the first hint's marker picks that hint (at 12 px a mouse's reach, a
    # near miss started a new spot and the next colour made a third hint).
    first = phone.locator("#fix-markers .fix-marker").first.bounding_box()
    assert first is not None and first["width"] >= 31, first  # a finger's size: 2rem
    img.tap(position={"x": 0.3 * box["width"] + 18, "y": 0.3 * box["height"]})
    expect(phone.locator("#fix-markers .fix-marker").first).to_have_class(re.compile("is-selected"))
    expect(phone.locator("#fix-markers .fix-marker.is-pending")).to_have_count(0)
    # No empty room under the head's buttons (the delete error's place, empty until a delete fails).
    gap = phone.evaluate(
        "document.querySelector('.page-head').getBoundingClientRect().bottom"
        " - document.querySelector('.job-actions').getBoundingClientRect().bottom"
    )
    assert gap < 2, f"{gap:.0f} px of empty page head under the buttons"


def test_upload_numbers_every_step_it_shows(layout_stack, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(layout_stack.base_url + "/")
    page.locator("label[data-method=cnn]").click()
    expect(page.locator("#options-step-no")).to_have_text("3")
    page.locator("label[data-method=exemplar]").click()  # a reference (3), presets (4), then the options (5)
    expect(page.locator("#presets-section")).to_be_visible()
    expect(page.locator("#step-reference .step-no")).to_have_text("3")
    expect(page.locator("#presets-heading .step-no")).to_have_text("4")
    expect(page.locator("#options-step-no")).to_have_text("5")
    page.locator("label[data-method=unet-bins]").click()
    expect(page.locator("#options-step-no")).to_have_text("3")


def test_study_and_researcher_pages(layout_stack, page, phone) -> None:  # type: ignore[no-untyped-def]
    base = layout_stack.base_url
    phone.goto(f"{base}/admin")
    phone.get_by_label("Password").fill(ADMIN_PASSWORD)
    phone.get_by_role("button", name="Log in").tap()
    expect(phone.get_by_role("link", name="New study")).to_be_visible()
    assert_fits_a_phone(phone, "studies")
    phone.get_by_role("link", name="New study").tap()
    phone.wait_for_url(f"{base}/admin/studies/new")
    assert_fits_a_phone(phone, "new study")  # the file inputs too, not the browser's 20 px button
    phone.get_by_label("Title").fill("Layout study")
    phone.get_by_label("Address").fill(SLUG)
    phone.locator('input[name="methods"][value="cnn"]').check()
    phone.get_by_label("Colour photos").set_input_files([str(photo(p)) for p in ("975_", "097_", "001_")])
    phone.get_by_label("Trials in part 1").fill("2")
    phone.get_by_label("Trials in part 2").fill("2")
    phone.get_by_role("button", name="Create study and queue colorizations").tap()
    phone.wait_for_url(f"{base}/admin/studies/{SLUG}")
    ready = re.compile(r"All \d+ stimuli are ready")
    expect(phone.locator("#readiness")).to_contain_text(ready, timeout=60_000)
    phone.get_by_role("button", name="Open study").tap()
    expect(phone.locator("h1 .badge")).to_have_text("open")

    # A participant on a computer: the question is focused for screen readers, without a focus ring; the two
    # answers fit on one line each.
    page.goto(f"{base}/study/{SLUG}")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Begin part 1").click()
    expect(page.locator("button.answer").first).to_be_enabled()
    question = page.locator("#trial-question")
    expect(question).to_be_focused()
    assert question.evaluate("el => getComputedStyle(el).boxShadow") == "none"
    heights = page.locator("#answers-part1 .answer").evaluate_all(
        "buttons => buttons.map((b) => b.getBoundingClientRect().height)"
    )
    assert max(heights) < 60, f"an answer button wraps its words: {heights}"

    # The study page on the phone, with results: it fits, the results' controls wrap below their heading
    # instead of squeezing the button to two lines, and the figures sit two to a row.
    phone.goto(f"{base}/admin/studies/{SLUG}")
    expect(phone.locator(".stat-grid")).to_be_visible()
    assert_fits_a_phone(phone, "study")
    exclude = phone.get_by_role("link", name=re.compile("failed attention checks"))
    exclude_box = exclude.bounding_box()
    assert exclude_box is not None and exclude_box["height"] < 48, exclude_box
    tiles = phone.locator(".stat-grid > div").evaluate_all(
        "tiles => tiles.map((tile) => Math.round(tile.getBoundingClientRect().top))"
    )
    assert tiles[0] == tiles[1], f"one figure per row on a phone: {tiles}"
