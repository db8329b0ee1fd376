"""The job page's "Fix colours" (real server + worker): a red hint clicked on the sky re-runs the job and the
sky there turns red in the new result; arrow keys + Enter add a hint; Ctrl+Z undoes back to the first result
and the previews are deleted; "Keep this" opens the kept job's page, which links back to the first job."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SPOT = (0.15, 0.25)  # plain gray sky in the lakeside photo: the net leaves it almost colourless


def wait_done(base_url: str, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base_url}/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            assert job["status"] == "done", job
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def redness(base_url: str, job_id: str, at: tuple[float, float] = SPOT, radius: int = 6) -> float:
    """Mean of R - (G + B) / 2 over a small patch of the job's result around ``at``."""
    png = httpx.get(f"{base_url}/jobs/{job_id}/result.png").content
    rgb = Image.open(io.BytesIO(png)).convert("RGB")
    cx, cy = round(at[0] * (rgb.width - 1)), round(at[1] * (rgb.height - 1))
    values = [
        r - (g + b) / 2
        for x in range(cx - radius, cx + radius + 1)
        for y in range(cy - radius, cy + radius + 1)
        for r, g, b in [rgb.getpixel((x, y))]
    ]
    return sum(values) / len(values)


def gone(base_url: str, job_id: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{base_url}/jobs/{job_id}").status_code == 404:
            return True
        time.sleep(0.3)
    return False


def click_spot(page) -> None:  # type: ignore[no-untyped-def]
    img = page.locator("#fix-img")
    box = img.bounding_box()
    assert box is not None
    img.click(position={"x": SPOT[0] * box["width"], "y": SPOT[1] * box["height"]})


def test_fix_colours_hint_undo_keep(stack, page) -> None:  # type: ignore[no-untyped-def]
    with photo("975_").open("rb") as f:
        created = httpx.post(f"{stack.base_url}/colorize", files={"image": ("lakeside.jpg", f, "image/jpeg")})
    assert created.status_code == 202, created.text
    first = created.json()["id"]
    wait_done(stack.base_url, first)
    before = redness(stack.base_url, first)

    page.goto(f"{stack.base_url}/jobs/{first}/view")
    section = page.locator("#fix-section")
    expect(section).to_be_visible(timeout=30_000)
    img = page.locator("#fix-img")
    expect(img).to_have_attribute("data-loaded-job-id", first)
    expect(page.locator("#fix-palette .fix-swatch")).to_have_count(11)
    expect(page.locator("#fix-here .fix-swatch")).to_have_count(1)  # the colour of the result there
    expect(page.locator("#fix-keep")).to_be_disabled()

    # A pure red hint on the sky: the job runs again and the new result is shown in place.
    page.locator("#fix-color").fill("#ff0000")
    click_spot(page)
    expect(page.locator("#fix-list li")).to_have_count(1)
    expect(page.locator("#fix-markers .fix-marker")).to_have_count(1)
    expect(page.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
    expect(img).not_to_have_attribute("data-job-id", first)
    hinted = img.get_attribute("data-job-id")
    assert hinted
    job = httpx.get(f"{stack.base_url}/jobs/{hinted}").json()
    assert job["rerun_of"] == first and job["status"] == "done"
    [hint] = job["params"]["hints"]
    assert hint["color"] == "#ff0000"
    assert abs(hint["x"] - SPOT[0]) < 0.02 and abs(hint["y"] - SPOT[1]) < 0.02
    after = redness(stack.base_url, hinted)
    assert after > before + 20, (before, after)  # the sky there moved towards red
    expect(page.locator("#compare-top")).to_have_attribute("src", f"/jobs/{hinted}/result.png")

    # Keyboard: the photo is focusable; arrow keys move the crosshair, Enter adds a hint there.
    page.locator("#fix-stage").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(page.locator("#fix-list li")).to_have_count(2)
    expect(page.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
    expect(img).not_to_have_attribute("data-job-id", hinted)
    second = img.get_attribute("data-job-id")
    assert second and second != first

    # Ctrl+Z twice: back to one hint with its result, then to the first result; the previews are deleted.
    page.keyboard.press("Control+z")
    expect(page.locator("#fix-list li")).to_have_count(1)
    expect(img).to_have_attribute("data-job-id", hinted)
    page.locator("#fix-undo").click()
    expect(page.locator("#fix-list li")).to_have_count(0)
    expect(img).to_have_attribute("data-job-id", first)
    expect(page.locator("#fix-undo")).to_be_disabled()
    assert gone(stack.base_url, second) and gone(stack.base_url, hinted)

    # Again, and keep it: the kept job's page says which job it re-ran.
    click_spot(page)
    expect(page.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
    expect(page.locator("#fix-keep")).to_be_enabled()
    kept = img.get_attribute("data-job-id")
    assert kept and kept not in (first, hinted)
    page.locator("#fix-keep").click()
    page.wait_for_url(re.compile(rf"/jobs/{kept}/view$"))
    link = page.locator("#job-rerun-of")
    expect(link).to_be_visible()
    expect(link).to_contain_text("Re-run of job")
    expect(link.locator("a")).to_have_attribute("href", f"/jobs/{first}/view")
    expect(page.locator("#job-status")).to_have_text("Done")
    # The kept job starts its own Fix colours from its hint.
    expect(page.locator("#fix-list li")).to_have_count(1)
    assert httpx.get(f"{stack.base_url}/jobs/{first}").status_code == 200  # the first job stays
