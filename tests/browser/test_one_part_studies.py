"""A real-vs-fake survey only (0 trials in part 2: the report's Fig. 16 without the ratings), in headless
Chromium against a real `colorlab serve`: the participant reads instructions that name no part 2, answers
every image by keyboard ("Image 1 of 4", no "Part 1" label), never meets a part-2 intro and gets the
completion code; the researcher's results page then shows part 1 alone: its chart, its columns, its
comparison."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.backend.study.conftest import ADMIN_PASSWORD, photo_files
from tests.browser.conftest import serve_study

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLUG = "survey-only"
TRIALS = 3  # and one attention check: four images


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An open survey-only study (4 photos, real + cnn, attention checks) on its own database, served by a
    real `colorlab serve`; the server's address."""
    from backend.study import builder

    spec = builder.StudySpec(
        title="Real or colorized?",
        methods=["cnn"],
        trials_part1=TRIALS,
        trials_part2=0,
        attention_checks=True,
        completion_code="SURVEY-OK",
        slug=SLUG,
    )
    yield from serve_study(tmp_path_factory.mktemp("survey"), spec, photo_files(4))


def test_a_participant_completes_a_survey_only_study_and_results_show_part_1_alone(  # type: ignore[no-untyped-def]
    base, page, browser
) -> None:
    page.goto(f"{base}/study/{SLUG}")
    page.get_by_role("button", name="I agree to take part").click()
    instructions = page.locator("#phase-instructions")
    expect(instructions).to_be_visible()
    expect(instructions).to_contain_text("Decide whether it is a real photo")
    expect(instructions).to_contain_text("You will see 4 images in all")
    expect(instructions).not_to_contain_text("Part 2")
    expect(instructions).not_to_contain_text("stars")
    expect(page.get_by_role("button", name="Begin part 1")).to_have_count(0)
    page.get_by_role("button", name="Begin", exact=True).click()

    for index in range(1, TRIALS + 2):
        expect(page.locator(".trial-meta")).to_have_text(f"Image {index} of {TRIALS + 1}")
        expect(page.locator("#answers-part1 button.answer").first).to_be_enabled()  # the image is shown
        expect(page.locator("#answers-part2")).to_be_hidden()
        page.keyboard.press("c")  # "colorized": the attention check's gray image is answered right too
    done = page.locator("#phase-done")
    expect(done).to_be_visible()
    expect(page.locator("#completion-code")).to_have_text("SURVEY-OK")
    expect(page.locator("#progress-fill")).to_have_attribute("style", "width: 100%;")
    assert page.locator("#phase-part2-intro").count() == 0  # never a part-2 intro with nothing after it

    researcher = browser.new_context(viewport={"width": 1280, "height": 900})
    admin = researcher.new_page()
    try:
        admin.goto(f"{base}/admin/studies/{SLUG}")
        admin.fill("#password", ADMIN_PASSWORD)
        admin.get_by_role("button", name="Log in").click()
        results = admin.locator("#results")
        expect(results.locator(".stat-grid")).to_be_visible()
        expect(admin.locator(".lead").first).to_contain_text("3 trials, real or colorized only")
        # Part 1's chart only: no empty rating chart beside it
        expect(results.locator("svg.chart")).to_have_count(1)
        expect(results.locator(".chart-heading")).to_have_text(
            "Judged a real photo (95% Wilson interval, by participant)"
        )
        expect(results.locator(".chart-bar")).to_have_count(2)  # real and cnn, both answered
        # The tables have part 1's columns and measure only
        headers = results.locator("table.conditions thead th")
        expect(headers).to_have_text(
            ["Condition", "Part 1 n (people)", "Judged real", "95% CI", "Correct", "Median time"]
        )
        expect(results.locator("table.conditions")).not_to_contain_text("★")
        expect(results.locator("#comparisons thead th")).to_have_text(
            ["Pair", "Judged real: difference", "Interval"]
        )
        expect(results.locator("#comparisons tbody tr")).to_have_count(1)
        expect(results.locator("#comparisons-note")).not_to_contain_text("stars")
        expect(results.locator("#interval-note")).not_to_contain_text("rating")
        expect(results.locator("details.per-photo summary")).to_have_text(
            "Per-photo breakdown (4 photos): judged real (n)"
        )
        stat = results.locator(".stat-grid div", has_text="Answers").locator("dd")
        expect(stat).to_have_text("3")  # part 1's answers, no "+ 0"

        # The new-study form takes 0 trials in a part, and its standard instructions follow the parts
        # (a text of the researcher's own stays theirs).
        admin.goto(f"{base}/admin/studies/new")
        part1, part2 = admin.get_by_label("Trials in part 1"), admin.get_by_label("Trials in part 2")
        expect(part2).to_have_attribute("min", "0")
        text = admin.get_by_label("Instructions")
        expect(text).to_contain_text("Part 2: rate how well")
        part2.fill("0")
        expect(text).to_have_value(re.compile(r"^You will see one image at a time\. Decide whether"))
        part2.fill("4")
        part1.fill("0")
        expect(text).to_have_value(re.compile(r"^You will see one image at a time\. Rate how well"))
        text.fill("Our own words.")
        part1.fill("5")
        expect(text).to_have_value("Our own words.")
    finally:
        researcher.close()
