"""Where the keyboard goes and what a screen reader is told on the pages that change by themselves: the job
page says each phase once (not every second's message), Fix colours and the history keep the focus where
the person was, the batch page takes it to the before/after view and back, and in forced colours (Windows
High Contrast) the focus ring and the chosen option still show."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import colorize_lakeside, wait_done
from tests.browser.test_fix_colours import click_spot, palette
from tests.conftest import photo


def focused(page) -> str:  # type: ignore[no-untyped-def]
    """The focused element, as "TAG#id.class1.class2"."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement; return e.tagName + (e.id ? '#' + e.id : '') + "
            "[...e.classList].map((c) => '.' + c).join(''); }"
        )
    )


def test_the_job_page_announces_its_phases_not_every_message(stack, page) -> None:  # type: ignore[no-untyped-def]
    job_id = colorize_lakeside(stack.base_url)
    page.goto(f"{stack.base_url}/jobs/{job_id}/view")
    expect(page.locator("#job-announce")).to_have_text("Finished: the colorized photo is shown below.")
    assert page.locator("#job-announce").get_attribute("role") == "status"
    assert page.locator("#progress-message").get_attribute("aria-live") is None


def test_fix_colours_keeps_the_focus_in_its_list_of_hints(stack, page) -> None:  # type: ignore[no-untyped-def]
    job_id = colorize_lakeside(stack.base_url, page)
    page.goto(f"{stack.base_url}/jobs/{job_id}/view")
    expect(page.locator("#fix-img")).to_have_attribute("data-loaded-job-id", job_id, timeout=30_000)
    for spot in ((0.3, 0.3), (0.7, 0.6)):
        click_spot(page, spot)
        palette(page, "#5a8f29").click()
    expect(page.locator("#fix-list li")).to_have_count(2)
    expect(page.locator("#fix-color-name")).to_have_text("Grass green")  # a swatch's name, not only its code
    page.locator("#fix-list .fix-pick").first.focus()
    page.keyboard.press("Enter")  # select hint 1: the list is drawn anew
    assert focused(page).startswith("BUTTON.fix-pick"), focused(page)
    expect(page.locator("#fix-list .fix-pick").first).to_have_attribute("aria-pressed", "true")
    page.locator("#fix-list .fix-remove").first.focus()
    page.keyboard.press("Enter")  # remove hint 1: the next one's Remove takes the focus
    expect(page.locator("#fix-list li")).to_have_count(1)
    assert focused(page).startswith("BUTTON.button.button-ghost.button-small.fix-remove"), focused(page)
    page.keyboard.press("Enter")  # and the last: the photo takes it
    expect(page.locator("#fix-list li")).to_have_count(0)
    assert focused(page) == "DIV#fix-stage.fix-stage", focused(page)


def test_deleting_from_the_history_moves_the_focus_to_the_next_card(stack, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(stack.base_url + "/")
    first = colorize_lakeside(stack.base_url, page)
    second = colorize_lakeside(stack.base_url, page)
    page.goto(stack.base_url + "/history")
    newest = page.locator(f'.job-card[data-job-id="{second}"]')
    delete = newest.locator(".job-delete")
    expect(delete).to_have_accessible_name(re.compile(r"^Delete lakeside\.jpg"))
    page.once("dialog", lambda dialog: dialog.accept())
    delete.focus()
    page.keyboard.press("Enter")
    expect(newest).to_have_count(0)
    expect(page.locator(f'.job-card[data-job-id="{first}"] .job-card-link')).to_be_focused()


def test_the_batch_viewer_takes_the_focus_and_gives_it_back(stack, page) -> None:  # type: ignore[no-untyped-def]
    one = {"name": "p1.jpg", "mimeType": "image/jpeg", "buffer": photo("001_").read_bytes()}
    page.goto(stack.base_url + "/")
    r = page.request.post(f"{stack.base_url}/batches", multipart={"method": "cnn", "images": one})
    assert r.status == 202, r.text()
    batch = r.json()["id"]
    item = httpx.get(f"{stack.base_url}/batches/{batch}").json()["items"][0]
    wait_done(stack.base_url, item["job_id"])
    page.goto(f"{stack.base_url}/batches/{batch}/view")
    card = page.locator("#batch-grid .job-card-link").first
    expect(card).to_have_accessible_name(re.compile(r"^Before and after: p1\.jpg\s*Done"))
    card.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#viewer-heading")).to_be_focused()
    page.locator("#viewer-back").click()
    expect(card).to_be_focused()


def test_forced_colours_still_show_the_focus_and_the_chosen_method(stack, page) -> None:  # type: ignore[no-untyped-def]
    page.emulate_media(forced_colors="active")
    page.goto(stack.base_url + "/")
    page.locator(".site-nav a").first.focus()
    page.keyboard.press("Tab")
    style = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert style != "none", (focused(page), style)
    chosen = page.locator(".method-card:has(input:checked)").first
    expect(chosen).to_be_visible()
    assert chosen.evaluate("(e) => getComputedStyle(e).outlineStyle") == "solid"
