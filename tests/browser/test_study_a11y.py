"""The participant's study page for keyboard and screen-reader users, in headless Chromium against a real
`colorlab serve`: focus lands on the thanks heading after the last answer (and on the closed and error
headings when they appear), a redirect waits with a visible countdown that "Stay on this page" stops, the
single-key answers work only while focus is inside the trial section, and the trial section is no live region
(its focused question carries "Image N of M" and any attention check's instruction as its description)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.backend.study.conftest import photo_files
from tests.browser.conftest import serve_study
from tests.browser.test_study_display import begin, wait_trial

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLUG = "a11y-study"
TRIALS = 2  # per part, and one attention check in each: three images per part
REDIRECT = "https://return.example/done?study=a11y"
REDIRECT_SECONDS = 20  # study.js: REDIRECT_DELAY_MS


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An open two-part study with attention checks, a completion code and a redirect, served by a real
    `colorlab serve`; the server's address."""
    from backend.study import builder

    spec = builder.StudySpec(
        title="Real or colorized?",
        methods=["cnn"],
        trials_part1=TRIALS,
        trials_part2=TRIALS,
        attention_checks=True,
        completion_code="A11Y-OK",
        redirect_url=REDIRECT,
        slug=SLUG,
    )
    yield from serve_study(tmp_path_factory.mktemp("a11y"), spec, photo_files(4))


def stub_redirect_target(page) -> None:  # type: ignore[no-untyped-def]
    """The redirect's address is not reachable from the tests: answer it in the browser."""
    page.context.route(
        "https://return.example/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>Back at the panel</h1>"),
    )


def answered(page, base: str) -> int:  # type: ignore[no-untyped-def]
    """How many answers the server has stored for this browser's participant."""
    res = page.request.get(f"{base}/study/{SLUG}/api/state")
    assert res.ok, res.text()
    return int(res.json()["progress"]["answered"])


def answer_all(page, *, check_descriptions: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Every trial by keyboard, from the focused question; with ``check_descriptions``, each question's
    accessible description is checked on the way."""
    instructions = 0
    for part in (1, 2):
        if part == 2:
            page.get_by_role("button", name="Begin part 2").click()
        for index in range(1, TRIALS + 2):
            wait_trial(page, part, index)
            question = page.locator("#trial-question")
            expect(question).to_be_focused()
            if check_descriptions:
                meta = f"Part {part} · image {index} of {TRIALS + 1}"
                instruction = page.locator("#trial-instruction")
                if instruction.is_visible():
                    instructions += 1
                    text = instruction.inner_text()
                    assert text.startswith("Attention check"), text
                    expect(question).to_have_accessible_description(f"{meta} {text}")
                else:
                    expect(question).to_have_accessible_description(meta)
            page.keyboard.press("c" if part == 1 else "3")
    if check_descriptions:
        assert instructions == 1, "part 2's attention check should show its instruction"


def test_the_trial_section_is_no_live_region_and_its_question_says_where_the_participant_is(  # type: ignore[no-untyped-def]
    base, page
) -> None:
    stub_redirect_target(page)
    begin(page, base, SLUG)
    wait_trial(page, 1, 1)
    live = page.evaluate(
        "() => { const s = document.getElementById('phase-trial');"
        " return [s.getAttribute('aria-live'), Boolean(s.closest('[aria-live]')),"
        " document.querySelectorAll('#phase-trial [aria-live]:not([role=alert])').length]; }"
    )
    assert live == [None, False, 0], f"the trial section (or a part of it) is a live region: {live}"
    answer_all(page, check_descriptions=True)
    expect(page.locator("#done-h")).to_be_focused()


def test_focus_lands_on_the_thanks_heading_and_the_redirect_waits_for_the_participant(  # type: ignore[no-untyped-def]
    base, page
) -> None:
    stub_redirect_target(page)
    page.clock.install()  # time flows as usual; fast_forward jumps it (no 20 s waits)
    begin(page, base, SLUG)
    answer_all(page)

    done = page.locator("#done-h")
    expect(done).to_be_focused()
    expect(page.locator("#completion-code")).to_have_text("A11Y-OK")
    # Focused, the heading is read with the code and where the page goes next
    expect(done).to_have_accessible_description(re.compile(r"Your completion code: A11Y-OK.*Going back to"))
    countdown = page.locator("#redirect-countdown")
    expect(countdown).to_be_visible()
    stated = re.compile(rf"^Going back to return\.example in ({REDIRECT_SECONDS}|{REDIRECT_SECONDS - 1}) s\.")
    expect(countdown).to_have_text(stated)
    expect(page.get_by_role("link", name="Continue")).to_have_attribute("href", REDIRECT)
    study_url = page.url

    page.wait_for_timeout(3_000)  # longer than the 2.5 s the page used to stay
    assert page.url == study_url
    page.clock.fast_forward(10_000)
    expect(countdown).to_have_text(re.compile(r"in [5-7] s\.$"))  # counting down, still here
    assert page.url == study_url

    page.clock.fast_forward(REDIRECT_SECONDS * 1000)  # past the stated delay: the page leaves on its own
    page.wait_for_url(REDIRECT)
    expect(page.locator("h1")).to_have_text("Back at the panel")


def test_stay_on_this_page_stops_the_redirect_and_continue_still_leaves(base, page) -> None:  # type: ignore[no-untyped-def]
    stub_redirect_target(page)
    page.clock.install()
    begin(page, base, SLUG)
    answer_all(page)
    expect(page.locator("#done-h")).to_be_focused()
    study_url = page.url

    page.wait_for_timeout(3_000)
    page.get_by_role("button", name="Stay on this page").click()
    expect(page.locator("#redirect-countdown")).to_be_hidden()
    expect(page.locator("#redirect-stopped")).to_have_text(
        "You are staying on this page: continue when you are ready."
    )
    expect(page.get_by_role("button", name="Stay on this page")).to_have_count(0)
    continue_link = page.get_by_role("link", name="Continue")
    expect(continue_link).to_be_focused()  # the pressed button is gone: focus is not lost to the page

    page.clock.fast_forward(5 * 60_000)  # far past the delay: the page stays
    page.wait_for_timeout(500)
    assert page.url == study_url
    expect(page.locator("#completion-code")).to_have_text("A11Y-OK")

    continue_link.click()  # the participant leaves when ready
    page.wait_for_url(REDIRECT)


def test_keys_answer_only_while_focus_is_inside_the_trial_section(base, page) -> None:  # type: ignore[no-untyped-def]
    stub_redirect_target(page)
    begin(page, base, SLUG)
    wait_trial(page, 1, 1)
    expect(page.locator("#phase-instructions")).to_be_hidden()

    # Focus on the page itself, then on <main>: the shortcuts do nothing
    page.evaluate("() => document.activeElement.blur()")
    assert page.evaluate("() => document.activeElement === document.body")
    for key in ("r", "c", "1"):
        page.keyboard.press(key)
    page.locator("#main").focus()
    page.keyboard.press("r")
    page.wait_for_timeout(700)
    expect(page.locator("#trial-index")).to_have_text("1")
    assert answered(page, base) == 0, "a key pressed outside the trial section recorded an answer"

    # A click on the image keeps focus in the section, where the keys work; "F" is no answer (undocumented)
    page.locator("#stimulus").click()
    assert page.evaluate("() => document.activeElement.id") == "phase-trial"
    page.keyboard.press("f")
    page.wait_for_timeout(500)
    expect(page.locator("#trial-index")).to_have_text("1")
    assert answered(page, base) == 0, '"F" answered'
    page.keyboard.press("r")
    wait_trial(page, 1, 2)
    assert answered(page, base) == 1

    # Each trial starts at its question, inside the section: a key answers from there, and from an answer
    expect(page.locator("#trial-question")).to_be_focused()
    page.keyboard.press("c")
    wait_trial(page, 1, 3)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('data-response')") == "real"
    page.keyboard.press("c")
    expect(page.locator("#phase-part2-intro")).to_be_visible()
    assert answered(page, base) == 3

    # Part 2's intro holds focus outside the section: its keys do nothing there
    page.keyboard.press("2")
    page.wait_for_timeout(500)
    assert answered(page, base) == 3
    page.get_by_role("button", name="Begin part 2").click()
    wait_trial(page, 2, 1)
    page.keyboard.press("2")
    wait_trial(page, 2, 2)
    assert answered(page, base) == 4


def test_the_closed_and_error_headings_take_focus(base, page) -> None:  # type: ignore[no-untyped-def]
    stub_redirect_target(page)
    begin(page, base, SLUG)
    wait_trial(page, 1, 1)
    # The study closes under the participant: the server's answer says so
    closed = json.dumps({"phase": "closed"})
    page.route(
        f"**/study/{SLUG}/api/answer",
        lambda route: route.fulfill(status=200, content_type="application/json", body=closed),
    )
    page.keyboard.press("r")
    expect(page.locator("#phase-closed")).to_be_visible()
    expect(page.locator("#closed-h")).to_be_focused()

    page.unroute(f"**/study/{SLUG}/api/answer")
    page.reload()
    wait_trial(page, 1, 1)  # nothing was stored: the same trial again
    # The study is gone (404): the error heading takes focus, read with the server's reason
    gone = json.dumps({"detail": "There is no such study."})
    page.route(
        f"**/study/{SLUG}/api/answer",
        lambda route: route.fulfill(status=404, content_type="application/json", body=gone),
    )
    page.keyboard.press("r")
    expect(page.locator("#phase-error")).to_be_visible()
    error = page.locator("#error-h")
    expect(error).to_be_focused()
    expect(error).to_have_accessible_description("There is no such study.")
