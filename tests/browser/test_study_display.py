"""The study pages as participants and researchers see them, in headless Chromium against a real
`colorlab serve`, at 1280 × 800 and on a 390 × 844 phone: every stimulus is shown at one comfortable size
whatever its pixel size, with the answers in view; no answer looks chosen (hovered, focused) when a trial
appears, while the keyboard shortcuts and a keyboard user's focus ring still work; the results page's charts
and tables fit a phone."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.backend.study.conftest import ADMIN_PASSWORD, photo_paths
from tests.browser.conftest import _checked_page, serve_study

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLUG = "display-study"
TRIALS = 6
# Both 4:3, so that every stimulus should show at exactly one size: a small one (the audit's 171 × 128 photo
# was shown 170 px wide on a computer) and one twice as large.
LARGE, SMALL = (336, 252), (172, 129)


def four_by_three(path: Path, size: tuple[int, int], name: str):  # type: ignore[no-untyped-def]
    from PIL import Image

    from backend.study.photos import PhotoFile

    with Image.open(path) as im:
        side = min(im.width / 4, im.height / 3)
        out = im.convert("RGB").crop((0, 0, round(side * 4), round(side * 3))).resize(size)
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=92)
    return PhotoFile(name, buf.getvalue())


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An open study of six photos, three small and three large, each as the real photo and two (fake)
    colorizations, on its own database; served by a real `colorlab serve`. Returns the server's address."""
    from backend.study import builder

    photos = [
        four_by_three(p, SMALL if i % 2 else LARGE, f"{'small' if i % 2 else 'large'}-{i}.jpg")
        for i, p in enumerate(photo_paths(TRIALS))
    ]
    spec = builder.StudySpec(
        title="Real or colorized?",
        methods=["cnn", "fusion"],
        trials_part1=TRIALS,
        trials_part2=TRIALS,
        attention_checks=False,
        slug=SLUG,
    )
    yield from serve_study(tmp_path_factory.mktemp("display"), spec, photos)


@pytest.fixture
def desktop(browser, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    yield from _checked_page(browser, request, viewport={"width": 1280, "height": 800})


def begin(page, base: str, slug: str = SLUG) -> None:  # type: ignore[no-untyped-def]
    """Consent and start part 1 of the study ``slug``."""
    page.goto(f"{base}/study/{slug}")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Begin part 1").click()


def wait_trial(page, part: int, index: int) -> None:  # type: ignore[no-untyped-def]
    expect(page.locator("#trial-part")).to_have_text(f"Part {part}")
    expect(page.locator("#trial-index")).to_have_text(str(index))
    expect(page.locator(f"#answers-part{part} button.answer").first).to_be_enabled()  # the image is shown


# What a trial looks like as it appears: where focus is, and each visible answer's look.
TRIAL_LOOK = """() => {
  const answers = [...document.querySelectorAll('button.answer')].filter((b) => b.offsetParent);
  return {
    focused: document.activeElement.id || document.activeElement.className,
    onAnswer: Boolean(document.activeElement.closest('button.answer')),
    looks: answers.map((b) => {
      const s = getComputedStyle(b);
      return [s.backgroundColor, s.boxShadow, s.outlineStyle];
    }),
    hovered: answers.findIndex((b) => b.matches(':hover')),
  };
}"""


def assert_nothing_looks_chosen(page, where: str) -> dict:  # type: ignore[no-untyped-def]
    page.wait_for_timeout(400)  # past the buttons' .15 s colour transition: only a lasting look counts
    look = page.evaluate(TRIAL_LOOK)
    assert look["focused"] == "trial-question" and not look["onAnswer"], f"{where}: focus on {look}"
    assert len({tuple(x) for x in look["looks"]}) == 1, f"{where}: an answer looks different: {look}"
    assert look["looks"][0][1] == "none", f"{where}: a focus ring or shadow on the answers: {look}"
    return look


def stimulus_box(page) -> dict:  # type: ignore[no-untyped-def]
    return page.evaluate("""() => {
      const img = document.getElementById('stimulus');
      const r = img.getBoundingClientRect();
      const answers = [...document.querySelectorAll('.answer-row, .star-row')].find((row) => !row.hidden);
      return {natural: img.naturalWidth, width: r.width, height: r.height, left: r.left, right: r.right,
              answersBottom: answers.getBoundingClientRect().bottom, vw: innerWidth, vh: innerHeight,
              scrolled: scrollY, rendering: getComputedStyle(img).imageRendering};
    }""")


@pytest.fixture
def landscape_phone(browser, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A phone on its side: 740 × 360, touch."""
    yield from _checked_page(
        browser, request, viewport={"width": 740, "height": 360}, is_mobile=True, has_touch=True
    )


# phone_page: conftest's 390 × 844 touch screen
@pytest.mark.parametrize("screen", ["desktop", "phone_page", "landscape_phone"])
def test_every_stimulus_shows_at_one_size_with_the_answers_in_view(base, screen, request) -> None:  # type: ignore[no-untyped-def]
    page = request.getfixturevalue(screen)
    begin(page, base)
    boxes = []
    for part in (1, 2):
        if part == 2:
            page.get_by_role("button", name="Begin part 2").click()
        for index in range(1, TRIALS + 1):
            wait_trial(page, part, index)
            box = stimulus_box(page)
            boxes.append(box)
            where = f"{screen}, part {part}, image {index}: {box}"
            assert box["left"] >= 0 and box["right"] <= box["vw"], f"{where}: wider than the screen"
            assert box["answersBottom"] <= box["vh"] and box["scrolled"] == 0, f"{where}: answers out of view"
            assert box["rendering"] == "auto", f"{where}: not smoothly scaled"
            if screen != "desktop":  # a tap leaves the tapped place "hovered": no answer may look so
                assert_nothing_looks_chosen(page, where)
            if screen == "desktop":
                page.keyboard.press("r" if part == 1 else str(1 + index % 4))  # the shortcuts still answer
            else:
                page.locator(f"#answers-part{part} button.answer").nth(index % 2).tap()
    assert {b["natural"] for b in boxes} == {SMALL[0], LARGE[0]}, "the study should show both sizes"
    widths = [round(b["width"]) for b in boxes]
    assert max(widths) - min(widths) <= 1, f"{screen}: stimuli at different sizes: {widths}"
    heights = [round(b["height"]) for b in boxes]
    assert max(heights) - min(heights) <= 1, f"{screen}: stimuli at different sizes: {heights}"
    # Comfortable: on a computer far above the large photo's own 336 px, on a phone the column's width, on its
    # side the height the screen leaves
    comfortable = {"desktop": 500, "phone_page": 390 - 2 * 16 - 2, "landscape_phone": 320}[screen]
    assert widths[0] >= comfortable, f"{screen}: stimuli shown {widths[0]} px wide"
    expect(page.locator("#phase-done")).to_be_visible()


def test_no_answer_looks_chosen_when_a_trial_appears(base, desktop) -> None:  # type: ignore[no-untyped-def]
    page = desktop
    begin(page, base)
    wait_trial(page, 1, 1)
    assert_nothing_looks_chosen(page, "part 1, image 1")

    # Answered with the mouse: the pointer now rests on the same answer of the next trial, which must not look
    # hovered (it is, to the browser) until the pointer moves.
    for part, index, button in ((1, 1, "#answers-part1 [data-response=real]"), (2, 1, "[data-rating='1']")):
        if part == 2:
            for i in range(index + 1, TRIALS + 1):  # the rest of part 1 by keyboard
                page.keyboard.press("c")
                if i < TRIALS:
                    wait_trial(page, 1, i + 1)
            page.get_by_role("button", name="Begin part 2").click()
            wait_trial(page, 2, 1)
            assert_nothing_looks_chosen(page, "part 2, image 1")
        box = page.locator(button).bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x - 10, y)
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.up()
        wait_trial(page, part, index + 1)
        look = assert_nothing_looks_chosen(page, f"part {part}, image {index + 1}, the pointer on an answer")
        assert look["hovered"] >= 0, f"the pointer should rest on an answer: {look}"
        page.mouse.move(x + 12, y + 2)  # a real move: the answer under the pointer shows its hover look again
        page.wait_for_timeout(400)
        moved = page.evaluate(TRIAL_LOOK)
        assert moved["looks"][moved["hovered"]][0] != moved["looks"][moved["hovered"] - 1][0], moved

    # A keyboard user: focus starts on the question (no answer focused); Tab reaches the first answer with a
    # visible focus ring; a shortcut answers from there, and the next trial starts at its question again.
    page.mouse.move(5, 5)  # out of the way
    wait_trial(page, 2, 2)
    assert_nothing_looks_chosen(page, "part 2, image 2")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => [document.activeElement.getAttribute('data-rating'),"
        " getComputedStyle(document.activeElement).boxShadow]"
    )
    assert focused[0] == "1" and focused[1] != "none", f"Tab should show the first answer focused: {focused}"
    page.keyboard.press("4")
    wait_trial(page, 2, 3)
    assert_nothing_looks_chosen(page, "part 2, image 3, after a shortcut")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the focused answer, by keyboard
    wait_trial(page, 2, 4)
    assert_nothing_looks_chosen(page, "part 2, image 4, after Enter on an answer")


def admin_login(page, base: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/admin/studies/{SLUG}")
    page.fill("#password", ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".stat-grid")).to_be_visible()


def take_part(page, base: str) -> None:  # type: ignore[no-untyped-def]
    """One participant through the whole study by keyboard, so that every chart has bars."""
    begin(page, base)
    for part in (1, 2):
        if part == 2:
            page.get_by_role("button", name="Begin part 2").click()
        for index in range(1, TRIALS + 1):
            wait_trial(page, part, index)
            page.keyboard.press(("r" if index % 2 else "c") if part == 1 else str(1 + index % 4))
    expect(page.locator("#phase-done")).to_be_visible()


# Every chart's and table's box, its content's width and the visible cue that it scrolls.
RESULTS_BOXES = """() => [...document.querySelectorAll('#results :is(.chart, .chart-heading, .table-scroll)')]
  .filter((el) => el.getClientRects().length && !el.closest('details:not([open])'))
  .map((el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return {what: el.className.baseVal ?? el.className, left: r.left, right: r.right, height: r.height,
            scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, overflowX: s.overflowX,
            cue: s.backgroundImage, font: parseFloat(s.fontSize)}; })"""


def test_results_fit_a_phone_and_stay_whole_on_a_computer(base, desktop, phone_page, browser) -> None:  # type: ignore[no-untyped-def]
    phone = phone_page
    participant = browser.new_context(viewport={"width": 1280, "height": 800})
    take_part(participant.new_page(), base)
    participant.close()

    admin_login(phone, base)
    width = phone.evaluate("innerWidth")
    assert phone.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    boxes = phone.evaluate(RESULTS_BOXES)
    for b in boxes:  # nothing reaches past the screen's edge
        assert b["left"] >= 0 and b["right"] <= width, f"cut at the screen's edge: {b}"
    charts = [b for b in boxes if b["what"] == "chart"]
    assert len(charts) == 2 and len([b for b in boxes if b["what"] == "chart-heading"]) == 2, boxes
    for chart in charts:  # the whole chart shows: scaled to the column, not cut or scrolled
        assert chart["height"] > 150, chart
    scrollers = phone.evaluate(
        "() => [...document.querySelectorAll('#results .chart-scroll')]"
        ".map((el) => el.scrollWidth - el.clientWidth)"
    )
    assert scrollers == [0, 0], f"a chart scrolls sideways on a phone: {scrollers}"
    # Each chart's title wraps above it, whole (the SVG's own one-line title, cut at this width, is hidden)
    headings = phone.locator("#results .chart-heading")
    expect(headings.first).to_have_text("Judged a real photo (95% Wilson interval, by participant)")
    expect(headings.nth(1)).to_have_text("Mean rating, 1-4 stars (95% bootstrap interval, by participant)")
    expect(phone.locator("#results svg.chart title").first).to_have_text(
        "Judged a real photo (95% Wilson interval, by participant)"
    )  # and the chart keeps it as its accessible name
    # Words drawn in the chart stay readable once shrunk: at least 9.5 px on screen
    smallest = phone.evaluate(
        "() => Math.min(...[...document.querySelectorAll('#results .chart text')]"
        ".filter((t) => t.getClientRects().length)"
        ".map((t) => t.getBoundingClientRect().height))"
    )
    assert smallest >= 9.5, f"chart text only {smallest:.1f} px high"
    # Every bar of every chart is on screen (the third condition's too)
    bars = phone.evaluate(
        "() => [...document.querySelectorAll('#results .chart-bar')]"
        ".map((b) => b.getBoundingClientRect().right)"
    )
    assert len(bars) == 6 and max(bars) <= width, bars

    # The conditions table is wider than a phone: it scrolls inside its box, which shows a shadow cue and
    # keeps each row's name in view while scrolled; a keyboard can reach and scroll it.
    table = phone.locator("#results .table-scroll").first
    info = table.evaluate(
        "el => [el.scrollWidth, el.clientWidth, getComputedStyle(el).overflowX, el.tabIndex]"
    )
    assert info[0] > info[1] and info[2] == "auto" and info[3] == 0, info
    assert "gradient" in table.evaluate("el => getComputedStyle(el).backgroundImage")
    name = phone.locator("#results .admin-table.conditions tbody th").first
    before = name.bounding_box()
    table.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    phone.wait_for_timeout(100)
    assert table.evaluate("el => el.scrollLeft") > 0
    after = name.bounding_box()
    assert before is not None and after is not None and abs(after["x"] - before["x"]) < 1, (before, after)
    last = phone.locator("#results .admin-table.conditions tbody tr").first.locator("td").last
    last_box = last.bounding_box()
    assert last_box is not None and last_box["x"] + last_box["width"] <= width, last_box

    # On a computer it all stays whole: two charts side by side, tables not scrolling
    admin_login(desktop, base)
    boxes = desktop.evaluate(RESULTS_BOXES)
    charts = [b for b in boxes if b["what"] == "chart"]
    assert charts[0]["right"] <= charts[1]["left"], f"charts side by side: {charts}"
    assert min(c["right"] - c["left"] for c in charts) >= 420, charts
    conditions = desktop.locator("#results .table-scroll").first
    widths = conditions.evaluate("el => [el.scrollWidth, el.clientWidth, el.innerText]")
    assert widths[0] <= widths[1], f"the conditions table scrolls: {widths}"
