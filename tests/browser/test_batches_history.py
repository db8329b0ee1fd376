"""Batches, names, history selection/deletion, queue position and exemplar presets in headless Chromium
against real server and worker processes."""

from __future__ import annotations

import io
import re
import zipfile

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import colorize_lakeside
from tests.conftest import EXEMPLAR_PAIRS, method_available, photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_batch_upload_grid_and_download_all_then_history(stack, page) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("the bundled cnn weights are missing")
    photos = [photo(p) for p in ("001_", "002_", "003_")]
    page.goto(stack.base_url + "/")
    page.set_input_files("#batch-files", [str(p) for p in photos])
    expect(page.locator("#batch-count")).to_contain_text("3 files")
    expect(page.locator("#submit")).to_have_text(re.compile("Colorize all"))
    page.locator("label[data-method=cnn]").click()
    page.locator("#submit").click()

    page.wait_for_url(re.compile(r"/batches/[\w-]+/view$"))
    batch_id = page.url.rstrip("/").split("/")[-2]
    grid = page.locator("#batch-grid .job-card")
    expect(grid).to_have_count(3)
    expect(page.locator('#batch-grid .job-card[data-status="done"]')).to_have_count(3, timeout=120_000)
    expect(page.locator("#batch-message")).to_contain_text("Finished: 3 colorized")
    names = page.locator("#batch-grid .job-card-name").all_inner_texts()
    assert sorted(names) == sorted(p.name for p in photos)
    # Before/after of one photo.
    grid.first.locator("button").click()
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#compare-top")).to_have_attribute("src", re.compile(r"/result\.png$"))
    # a square photo's before/after fits the 900 px window (at most 75 % of its height)
    expect(page.locator("#compare")).to_have_css("max-width", re.compile(r"min\(100%"))
    box = page.locator("#compare").bounding_box()
    assert box is not None and box["height"] <= 0.76 * 900, box
    # One "Download all": a zip named after the originals.
    with page.expect_download() as info:
        page.locator("#download-all").click()
    archive = zipfile.ZipFile(info.value.path())
    assert sorted(archive.namelist()) == sorted(f"{p.stem}-colorized.png" for p in photos)
    assert f"colorlab-batch-{batch_id[:8]}" in info.value.suggested_filename

    # The history shows each photo by its name; two selected download as one zip; one is deleted.
    page.goto(stack.base_url + "/history")
    cards = page.locator(".job-card")
    expect(cards).to_have_count(3)
    expect(page.locator(".job-card-name")).to_have_text([p.name for p in reversed(photos)])
    cards.nth(0).locator(".job-check").check()
    cards.nth(1).locator(".job-check").check()
    expect(page.locator("#download-selected")).to_have_text("Download selected (2)")
    with page.expect_download() as info:
        page.locator("#download-selected").click()
    assert len(zipfile.ZipFile(info.value.path()).namelist()) == 2
    first_id = cards.nth(0).get_attribute("data-job-id")
    page.once("dialog", lambda dialog: dialog.accept())
    cards.nth(0).locator(".job-delete").click()
    expect(page.locator(f'.job-card[data-job-id="{first_id}"]')).to_have_count(0)
    assert httpx.get(f"{stack.base_url}/jobs/{first_id}").status_code == 404
    page.reload()
    expect(page.locator(".job-card")).to_have_count(2)


def test_batch_page_reports_a_bad_photo(stack, page) -> None:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("album/grandma.jpg", photo("005_").read_bytes())
        z.writestr("album/notes.txt", b"not a photo")
    r = httpx.post(
        f"{stack.base_url}/batches", files={"images": ("album.zip", buf.getvalue())}, data={"method": "cnn"}
    )
    assert r.status_code == 202, r.text
    page.goto(stack.base_url + r.json()["page_url"])
    expect(page.locator("#rejected")).to_be_visible()
    expect(page.locator("#rejected-list")).to_contain_text("notes.txt")
    expect(page.locator('#batch-grid .job-card[data-status="done"]')).to_have_count(1, timeout=120_000)
    expect(page.locator("#batch-grid .job-card-name")).to_have_text("grandma.jpg")


def test_queued_job_shows_its_place_in_line(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    """Nothing consumes the idle stack's queue: the second job waits behind the first."""
    ids = []
    for prefix in ("001_", "002_"):
        source = photo(prefix)
        files = {"image": (source.name, source.read_bytes())}
        r = httpx.post(f"{idle_stack.base_url}/colorize", files=files, data={"method": "cnn"})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    page.goto(f"{idle_stack.base_url}/jobs/{ids[1]}/view")
    expect(page.locator("#job-title")).to_have_text(photo("002_").name)
    in_line = re.compile(r"^2nd in line · done in (a few seconds|about)")
    expect(page.locator("#progress-message")).to_have_text(in_line)
    page.goto(f"{idle_stack.base_url}/jobs/{ids[0]}/view")
    expect(page.locator("#progress-message")).to_have_text(re.compile(r"^Next in line"))


def test_method_cards_and_exemplar_presets(stack, page) -> None:  # type: ignore[no-untyped-def]
    if not method_available("exemplar"):
        pytest.skip("exemplar needs VGG weights: run `colorlab weights fetch vgg16-hed`")
    methods = {m["name"]: m for m in httpx.get(stack.base_url + "/methods").json()}
    page.goto(stack.base_url + "/")
    cnn = page.locator('.method-item[data-method="cnn"]')
    expect(cnn.locator(".method-desc")).to_have_text(methods["cnn"]["summary"])
    # The paper and architecture are behind "details".
    expect(cnn.locator(".method-details p").first).to_be_hidden()
    cnn.locator(".method-details summary").click()
    expect(cnn.locator(".method-details p").first).to_have_text(methods["cnn"]["description"])

    # "fast": every one-pass method that can run here (the reference-guided one too), never the exemplar
    fast = page.locator(".method-item", has=page.locator(".tag", has_text=re.compile(r"^fast$")))
    assert "unet-bins-reference" in fast.evaluate_all("items => items.map(i => i.dataset.method)")
    assert "exemplar" not in fast.evaluate_all("items => items.map(i => i.dataset.method)")
    page.locator("label[data-method=exemplar]").click()
    expect(page.locator("#presets-section")).to_be_visible()
    expect(page.locator(".preset .preset-label")).to_have_text(["Quick", "Balanced", "Paper"])
    expect(page.locator("#preset-balanced")).to_be_checked()
    expect(page.locator("#expected-time")).to_contain_text("Expected time on this server")
    # The raw knobs are under "advanced", folded; a preset fills them in.
    expect(page.locator("#options-title")).to_have_text("Advanced settings")
    page.locator('.preset[data-preset="paper"]').click()
    page.locator("#options-section summary").click()
    expect(page.locator("#opt-iterations")).to_have_value("1000")
    expect(page.locator("#opt-mode")).to_have_value("paper")
    paper_time = page.locator('.preset[data-preset="paper"] .preset-time').inner_text()
    assert paper_time.startswith("about")
    # Submitted with the Quick preset, the job's details list the iterations actually run.
    page.locator('.preset[data-preset="quick"]').click()
    page.fill("#opt-size", "32")
    page.fill("#opt-iterations", "20")
    page.set_input_files("#image", str(EXEMPLAR_PAIRS / "example" / "in1.jpg"))
    page.locator('.ref-option[data-source="example"]').first.click()
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/jobs/[\w-]+/view$"))
    expect(page.locator("#job-status")).to_have_text("Done", timeout=180_000)
    expect(page.locator("#details")).to_contain_text("Iterations run20 of 20")
    # Finished, its page offers the presets again: Balanced re-runs the same photo and reference.
    first = page.url
    expect(page.locator("#rerun-section")).to_be_visible()
    expect(page.locator("#rerun-presets .preset-label")).to_have_text(["Quick", "Balanced", "Paper"])
    page.locator('#rerun-presets [data-preset="balanced"]').click()
    page.wait_for_url(lambda url: url != first and url.endswith("/view"))
    again = page.url.rstrip("/").split("/")[-2]
    job = httpx.get(f"{stack.base_url}/jobs/{again}").json()
    assert (
        job["method"] == "exemplar" and job["urls"]["reference"] and job["rerun_of"] == first.split("/")[-2]
    )
    assert {k: job["params"][k] for k in ("mode", "iterations", "size")} == {
        "mode": "fast",
        "iterations": 50,
        "size": 256,
    }
    httpx.delete(f"{stack.base_url}/jobs/{again}")  # no need to let it run


def test_a_finished_job_is_deleted_from_its_own_page(stack, page) -> None:  # type: ignore[no-untyped-def]
    job_id = colorize_lakeside(stack.base_url)
    page.goto(f"{stack.base_url}/jobs/{job_id}/view")
    delete = page.get_by_role("button", name="Delete")
    expect(delete).to_be_visible()
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    delete.click()
    expect(page.locator("#job-status")).to_have_text("Done")  # dismissed: nothing happens
    assert httpx.get(f"{stack.base_url}/jobs/{job_id}").status_code == 200
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    delete.click()
    page.wait_for_url(f"{stack.base_url}/history")
    assert len(asked) == 2 and "lakeside.jpg" in asked[0] and "cannot be undone" in asked[0]
    assert httpx.get(f"{stack.base_url}/jobs/{job_id}").status_code == 404
