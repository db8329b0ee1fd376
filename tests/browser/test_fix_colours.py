"""The job page's "Fix colours" (real server + worker): a red hint clicked on the sky re-runs the job and the
sky there turns red in the new result; arrow keys + Enter add a hint; Ctrl+Z undoes back to the first result
and the previews are deleted; "Keep this" opens the kept job's page, which links back to the first job.
On a phone, a tap adds a hint the same way.
Five hints clicked where the first result is most wrong, each with the true colour there, move the result of a
grayscale validation photo towards the real one (AuC and PSNR up, AuC above plain gray)."""

from __future__ import annotations

import io
import re
import signal
import time

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import colorize_lakeside, result_rgb, wait_done
from tests.conftest import photo
from worker.colorizers import lab, metrics

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SPOT = (0.15, 0.25)  # plain gray sky in the lakeside photo: the net leaves it almost colourless


def redness(base_url: str, job_id: str, at: tuple[float, float] = SPOT, radius: int = 6) -> float:
    """Mean of R - (G + B) / 2 over a small patch of the job's result around ``at``."""
    rgb = result_rgb(base_url, job_id).astype(np.float64)
    height, width = rgb.shape[:2]
    cx, cy = round(at[0] * (width - 1)), round(at[1] * (height - 1))
    patch = rgb[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1]
    return float((patch[..., 0] - (patch[..., 1] + patch[..., 2]) / 2).mean())


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
    first = colorize_lakeside(stack.base_url)
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
    assert job["fix_preview"] is True  # out of the history until kept
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
    assert httpx.get(f"{stack.base_url}/jobs/{kept}").json()["fix_preview"] is False  # kept: a job like any
    link = page.locator("#job-rerun-of")
    expect(link).to_be_visible()
    expect(link).to_contain_text("Re-run of job")
    expect(link.locator("a")).to_have_attribute("href", f"/jobs/{first}/view")
    expect(page.locator("#job-status")).to_have_text("Done")
    # The kept job starts its own Fix colours from its hint.
    expect(page.locator("#fix-list li")).to_have_count(1)
    assert httpx.get(f"{stack.base_url}/jobs/{first}").status_code == 200  # the first job stays


def test_leaving_the_page_deletes_the_previews_not_kept(stack, page) -> None:  # type: ignore[no-untyped-def]
    """Closing or leaving the page without "Keep this" deletes its previews: a finished one, and one still
    waiting for the worker (which a single DELETE would only cancel, leaving it in the history)."""
    first = colorize_lakeside(stack.base_url)
    worker = stack.procs[0]

    def open_and_hint(wait_done: bool) -> str:
        page.goto(f"{stack.base_url}/jobs/{first}/view")
        expect(page.locator("#fix-img")).to_have_attribute("data-loaded-job-id", first, timeout=30_000)
        with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/rerun")) as sent:
            click_spot(page)
        preview = sent.value.json()["id"]
        if wait_done:
            expect(page.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
        return str(preview)

    finished = open_and_hint(wait_done=True)
    page.goto(f"{stack.base_url}/history")  # leaving: the page's pagehide deletes the preview
    assert gone(stack.base_url, finished)

    worker.send(signal.SIGSTOP)  # the next preview stays queued while the page is left
    try:
        waiting = open_and_hint(wait_done=False)
        assert httpx.get(f"{stack.base_url}/jobs/{waiting}").json()["status"] == "queued"
        page.goto(f"{stack.base_url}/history")
        assert gone(stack.base_url, waiting)
    finally:
        worker.send(signal.SIGCONT)
    assert httpx.get(f"{stack.base_url}/jobs/{first}").status_code == 200  # the page's own job stays


def test_a_hint_placed_then_coloured_is_one_step(stack, page) -> None:  # type: ignore[no-untyped-def]
    first = colorize_lakeside(stack.base_url)
    page.goto(f"{stack.base_url}/jobs/{first}/view")
    expect(page.locator("#fix-section")).to_be_visible(timeout=30_000)
    missing: list[str] = []  # a discarded preview is not polled again (each poll of it would be a 404)
    page.on(
        "response", lambda r: missing.append(r.url) if r.status == 404 and r.request.method == "GET" else None
    )
    img = page.locator("#fix-img")
    click_spot(page)  # placed with the picker's colour (sky blue) ...
    page.locator('#fix-palette .fix-swatch[data-color="#d0312d"]').click()  # ... then given its own
    expect(page.locator("#fix-list li")).to_have_count(1)
    expect(page.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
    shown = img.get_attribute("data-job-id")
    hints = httpx.get(f"{stack.base_url}/jobs/{shown}").json()["params"]["hints"]
    assert [h["color"] for h in hints] == ["#d0312d"]
    page.locator("#fix-undo").click()  # removes the hint: no blue hint the user never chose
    expect(page.locator("#fix-list li")).to_have_count(0)
    expect(img).to_have_attribute("data-job-id", first)
    expect(page.locator("#fix-undo")).to_be_disabled()
    page.wait_for_timeout(1000)  # a few more poll intervals (250 ms)
    assert missing == [], missing


def test_colour_again_keeps_the_hints_placed(stack, page) -> None:  # type: ignore[no-untyped-def]
    first = colorize_lakeside(stack.base_url)
    page.goto(f"{stack.base_url}/jobs/{first}/view")
    expect(page.locator("#fix-section")).to_be_visible(timeout=30_000)
    page.locator("#fix-color").fill("#ff0000")
    click_spot(page)
    expect(page.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
    # Not kept: "Colour again" at another vividness takes the hint along instead of dropping it.
    page.locator("#adjust-vividness").fill("0.9")
    page.locator("#adjust-apply").click()
    page.wait_for_url(re.compile(rf"/jobs/(?!{first})[^/]+/view$"))
    again = page.url.rstrip("/").split("/")[-2]
    params = httpx.get(f"{stack.base_url}/jobs/{again}").json()["params"]
    assert params["vividness"] == 0.9 and [h["color"] for h in params["hints"]] == ["#ff0000"]
    expect(page.locator("#details")).to_contain_text("Colour hints")


def test_fix_colours_by_touch_on_a_phone(stack, phone_page) -> None:  # type: ignore[no-untyped-def]
    """On a phone-sized touch screen the page fits its width, a tap on the photo adds a hint and re-runs the
    job, and a tap on the hint's marker selects it (the picker then recolours that hint, not a new one)."""
    first = colorize_lakeside(stack.base_url)
    before = redness(stack.base_url, first)

    page = phone_page
    page.goto(f"{stack.base_url}/jobs/{first}/view")
    img = page.locator("#fix-img")
    expect(img).to_have_attribute("data-loaded-job-id", first, timeout=30_000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    page.locator("#fix-color").fill("#ff0000")
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    assert box is not None
    img.tap(position={"x": SPOT[0] * box["width"], "y": SPOT[1] * box["height"]})
    expect(page.locator("#fix-list li")).to_have_count(1)
    expect(page.locator("#fix-state")).to_have_text("Updated", timeout=90_000)
    hinted = img.get_attribute("data-job-id")
    assert hinted and hinted != first
    assert redness(stack.base_url, hinted) > before + 20

    # Tapping the marker selects that hint instead of adding a second one beside it.
    marker = page.locator("#fix-markers .fix-marker")
    page.locator("#fix-list .fix-pick").tap()  # the list's button toggles the selection off
    expect(marker).not_to_have_class(re.compile("is-selected"))
    spot = marker.bounding_box()
    assert spot is not None
    page.touchscreen.tap(spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2)
    expect(marker).to_have_class(re.compile("is-selected"))
    expect(page.locator("#fix-list li")).to_have_count(1)


# --- five hints against the truth ---------------------------------------------------------------------------

TRUTH_PHOTO = "097_"  # drake: an imagenet-samples validation class (97 % 10 == 7), never trained on
GRID = 6  # the error map is judged in square blocks of 1/6 of the short side
PATCH = 3  # the hint colour: the mean of the real photo's (2·3 + 1)² pixels around the point
# Measured on the round-2 weights (see the test's docstring): AuC +0.040, PSNR +5.7 dB; set at about half.
MIN_AUC_GAIN = 0.02
MIN_PSNR_GAIN = 2.5


def worst_spots(first: np.ndarray, truth: np.ndarray, n: int = 5) -> list[tuple[float, float]]:
    """Centres (relative x, y) of the ``n`` blocks where the first result's ab is furthest from the truth's,
    at least one block apart, so each hint fixes a region of its own (and its marker is not clicked again)."""
    error = metrics.ab_l2_error(lab.rgb_to_lab(first)[..., 1:], lab.rgb_to_lab(truth)[..., 1:])
    h, w = error.shape
    side = min(h, w) // GRID
    rows, cols = h // side, w // side
    blocks = error[: rows * side, : cols * side].reshape(rows, side, cols, side).mean(axis=(1, 3))
    picked: list[tuple[int, int]] = []
    for k in np.argsort(blocks, axis=None)[::-1]:
        r, c = divmod(int(k), cols)
        if all(max(abs(r - pr), abs(c - pc)) >= 2 for pr, pc in picked):
            picked.append((r, c))
            if len(picked) == n:
                break
    return [((c + 0.5) * side / w, (r + 0.5) * side / h) for r, c in picked]


def true_colour(truth: np.ndarray, x: float, y: float) -> str:
    """The mean colour of a small patch of the real photo around (x, y), as the picker's "#rrggbb"."""
    h, w, _ = truth.shape
    cx, cy = round(x * (w - 1)), round(y * (h - 1))
    patch = truth[max(0, cy - PATCH) : cy + PATCH + 1, max(0, cx - PATCH) : cx + PATCH + 1]
    mean = patch.reshape(-1, 3).mean(axis=0)
    return "#" + "".join(f"{round(v):02x}" for v in mean)


def auc_psnr(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """AuC and PSNR as `colorlab evaluate` scores them (worker.colorizers.evaluation.scoring)."""
    values, _ = metrics.compare_rgb(pred, truth)
    return values["auc"], values["psnr"]


def test_five_hints_move_result_towards_truth(stack, page) -> None:  # type: ignore[no-untyped-def]
    """Upload the grayscale version of a real colour photo (default method), then, on its job page, click five
    spots where the first result is furthest from the truth and set the picker to the true colour there,
    waiting for each re-run to be shown. The last result beats the first on AuC and PSNR against the real
    photo, and beats plain gray on AuC. Measured (round-2 unet-bins weights): gray AuC 0.862 / 19.0 dB,
    first result 0.905 / 21.8 dB, five hints 0.945 / 27.5 dB."""
    truth = np.asarray(Image.open(photo(TRUTH_PHOTO)).convert("RGB"))
    # Gray with the photo's own Lab lightness, so the colours are all that the scores compare.
    gray = lab.lightness_to_gray_uint8(lab.rgb_to_lightness(truth))
    upload = io.BytesIO()
    Image.fromarray(gray, "L").save(upload, format="PNG")
    created = httpx.post(
        f"{stack.base_url}/colorize", files={"image": ("drake-gray.png", upload.getvalue(), "image/png")}
    )
    assert created.status_code == 202, created.text
    first = created.json()["id"]
    assert wait_done(stack.base_url, first)["method"] == "unet-bins"
    first_rgb = result_rgb(stack.base_url, first)
    assert first_rgb.shape == truth.shape
    spots = worst_spots(first_rgb, truth)

    page.goto(f"{stack.base_url}/jobs/{first}/view")
    expect(page.locator("#fix-section")).to_be_visible(timeout=30_000)
    img = page.locator("#fix-img")
    expect(img).to_have_attribute("data-loaded-job-id", first)
    box = img.bounding_box()
    assert box is not None
    shown = first
    for n, (x, y) in enumerate(spots, start=1):
        colour = true_colour(truth, x, y)
        img.click(position={"x": x * box["width"], "y": y * box["height"]})
        expect(page.locator("#fix-list li")).to_have_count(n)
        # The new hint is selected: the picker recolours it.
        page.locator("#fix-color").fill(colour)
        expect(page.locator("#fix-list li").nth(n - 1)).to_contain_text(colour)
        expect(page.locator("#fix-state")).to_have_text("Updated", timeout=60_000)
        expect(img).not_to_have_attribute("data-job-id", shown)
        shown = img.get_attribute("data-job-id") or ""
        expect(img).to_have_attribute("data-loaded-job-id", shown)  # the new result is on screen
        hints = httpx.get(f"{stack.base_url}/jobs/{shown}").json()["params"]["hints"]
        assert len(hints) == n and hints[-1]["color"] == colour, hints
        assert abs(hints[-1]["x"] - x) < 0.01 and abs(hints[-1]["y"] - y) < 0.01, (hints[-1], x, y)

    hinted_rgb = result_rgb(stack.base_url, shown)
    gray_auc, gray_psnr = auc_psnr(np.repeat(gray[..., None], 3, axis=2), truth)
    first_auc, first_psnr = auc_psnr(first_rgb, truth)
    hinted_auc, hinted_psnr = auc_psnr(hinted_rgb, truth)
    scores = f"gray {gray_auc:.4f}/{gray_psnr:.2f} dB, first {first_auc:.4f}/{first_psnr:.2f} dB, " + (
        f"five hints {hinted_auc:.4f}/{hinted_psnr:.2f} dB"
    )
    print(scores)
    assert hinted_auc > first_auc + MIN_AUC_GAIN, scores
    assert hinted_psnr > first_psnr + MIN_PSNR_GAIN, scores
    assert hinted_auc > gray_auc, scores
