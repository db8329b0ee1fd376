"""The compare pages in headless Chromium against real server and worker processes: one colour photo through
every available feed-forward method, results side by side, metrics filled in; bad uploads explained inline.

Screenshots of the finished pages (1280 and 375 px wide) go to test-artifacts/ui/.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sample_photo
from tests.conftest import EXEMPLAR_PAIRS, ROOT, method_available

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ROOT / "test-artifacts" / "ui"
METRIC_COLUMNS = ("eq9_accuracy", "auc", "psnr", "ssim", "colourfulness", "colourfulness_gap")


def feed_forward(base_url: str) -> list[dict]:
    methods = httpx.get(base_url + "/methods").json()
    return [m for m in methods if m["available"] and not m["needs_reference"] and not m["iterative"]]


def test_compare_colour_photo_shows_every_method_and_metrics(stack, page) -> None:  # type: ignore[no-untyped-def]
    expected = feed_forward(stack.base_url)
    if not expected:
        pytest.fail("no feed-forward method is available (the bundled cnn weights are missing?)")
    page.goto(stack.base_url + "/compare")
    expect(page.locator('.site-nav a[href="/compare"]')).to_have_attribute("aria-current", "page")
    # Every available method that needs no reference is ticked; the reference-based one waits for a reference.
    for method in expected:
        expect(page.locator(f"#method-{method['name']}")).to_be_checked()
    page.set_input_files("#image", str(sample_photo()))
    expect(page.locator("#image-drop .dropzone-preview img")).to_be_visible()
    page.locator("#submit").click()

    page.wait_for_url(re.compile(r"/compare/[\w-]+/view$"))
    group = page.url.rstrip("/").split("/")[-2]
    for method in expected:
        card = page.locator(f'.cmp-card[data-method="{method["name"]}"]')
        expect(card).to_have_attribute("data-status", "done", timeout=90_000)
        expect(card.locator(".cmp-thumb img")).to_have_attribute(
            "src", re.compile(r"/jobs/[\w-]+/result\.png$")
        )
        expect(card.locator(".cmp-download")).to_have_attribute(
            "download", f"{sample_photo().stem}-{method['name']}.png"
        )
    expect(page.locator("#cmp-status")).to_have_text("Done")
    expect(page.locator('.cmp-card[data-kind="original"]')).to_be_visible()

    # One metrics row per method, every column filled with a number (PSNR may read ∞).
    rows = page.locator("#metrics-body tr")
    expect(rows).to_have_count(len(expected))
    for column in METRIC_COLUMNS:
        expect(page.locator(f'#metrics-body td[data-metric="{column}"]')).to_have_count(
            len(expected), timeout=30_000
        )
    cells = page.locator("#metrics-body td").all_inner_texts()
    assert all(re.search(r"\d|∞", text) for text in cells), cells
    api = httpx.get(f"{stack.base_url}/compare/{group}").json()
    first = next(j for j in api["jobs"] if j["method"] == expected[0]["name"])
    shown = page.locator(
        f'#metrics-body tr[data-job-id="{first["id"]}"] td[data-metric="eq9_accuracy"]'
    ).inner_text()
    assert shown.startswith(f"{first['metrics']['eq9_accuracy'] * 100:.1f}%"), shown
    if len(expected) > 1:  # a ranking needs two results
        expect(page.locator("#metrics-body td.is-best").first).to_be_visible()
        best = max(api["jobs"], key=lambda j: j["metrics"]["auc"])  # the table said in plain words
        expect(page.locator("#metrics-verdict")).to_contain_text(
            f"closest to the real colours: {best['method_title']}"
        )

    # Click to enlarge: a before/after slider against the gray input, then the original.
    page.locator(f'.cmp-card[data-method="{expected[0]["name"]}"] .cmp-thumb').click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    expect(page.locator("#viewer-top")).to_have_attribute("src", re.compile(r"/result\.png$"))
    page.locator("#viewer-range").fill("75")
    assert page.locator("#viewer-compare").evaluate("el => el.style.getPropertyValue('--pos')") == "75%"
    page.locator("#viewer-base label", has_text="Original").click()
    expect(page.locator("#viewer-base-img")).to_have_attribute("src", re.compile(r"/original\.png$"))

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function("[...document.images].every((i) => i.complete)")
    page.screenshot(path=str(SHOTS / "compare-view-dialog-1280.png"))
    page.locator("#viewer-close").click()
    expect(viewer).to_be_hidden()
    page.screenshot(path=str(SHOTS / "compare-view-1280.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(SHOTS / "compare-view-375.png"), full_page=True)
    page.locator('.cmp-card[data-kind="original"] .cmp-thumb').click()  # the original: enlarged, no slider
    expect(page.locator("#viewer-single-img")).to_have_attribute("src", re.compile(r"/original\.png$"))
    expect(page.locator("#viewer-compare")).to_be_hidden()
    page.wait_for_function("document.getElementById('viewer-single-img').complete")
    enlarged = page.locator("#viewer-single-img").bounding_box()
    card = page.locator('.cmp-card[data-kind="original"] .cmp-thumb img').bounding_box()
    assert enlarged and card and enlarged["width"] > card["width"], (enlarged, card)  # enlarged, not shrunk
    page.locator("#viewer-prev").click()  # back to the last result: the slider again
    expect(page.locator("#viewer-compare")).to_be_visible()
    page.screenshot(path=str(SHOTS / "compare-view-dialog-375.png"))

    # The history shows the comparison as one card; its page deletes it, then shows the history.
    page.goto(stack.base_url + "/history")
    card = page.locator(f'.group-card[data-entry-id="{group}"]')
    expect(card.locator(".job-card-method")).to_have_text(f"Compared with {len(expected)} methods")
    expect(card.locator(".group-summary")).to_have_text(f"{len(expected)} done")
    card.locator(".job-card-link").click()
    page.wait_for_url(re.compile(rf"/compare/{group}/view$"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#delete-comparison").click()
    page.wait_for_url(re.compile(r"/history$"))
    expect(page.locator(f'.group-card[data-entry-id="{group}"]')).to_have_count(0)
    assert httpx.get(f"{stack.base_url}/compare/{group}").status_code == 404


def test_compare_bad_upload_is_explained_inline(stack, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No photo: a hint on the drop zone. A file that claims to be a PNG but is not: the server's `detail`."""
    page.goto(stack.base_url + "/compare")
    expect(page.locator(".cmp-method-card input:checked").first).to_be_attached()
    page.locator("#submit").click()
    expect(page.locator("#image-error")).to_contain_text("Choose a photo")

    fake = tmp_path / "notes.png"
    fake.write_bytes(b"this is not an image at all")
    page.set_input_files("#image", str(fake))
    expect(page.locator("#image-error")).to_be_hidden()
    page.locator("#submit").click()
    error = page.locator("#image-error")  # beside the file it is about (the answer's `field`)
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile(r"^The photo: not a supported image"))
    expect(page.locator("#form-error")).to_be_hidden()
    assert "/view" not in page.url
    expect(page.locator("#submit")).to_be_enabled()

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "compare-form-error-1280.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(SHOTS / "compare-form-375.png"), full_page=True)


def test_unknown_comparison_page_is_404(stack, page) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(stack.base_url + "/compare/nope/view")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator(".error-page")).to_contain_text("no comparison with this id")


def _ranked(real: dict) -> dict:
    """The real (queued) comparison turned into a finished one with two scored results and a failure."""
    job = real["jobs"][0]

    def done(suffix: str, title: str, result: str, metrics: dict) -> dict:
        urls = {**job["urls"], "result": result, "page": f"/jobs/{job['id']}/view"}
        return {
            **job,
            "id": job["id"] + suffix,
            "method": title.lower(),
            "method_title": title,
            "status": "done",
            "progress": {**job["progress"], "fraction": 1.0},
            "run_seconds": 0.8,
            "metrics": metrics,
            "urls": urls,
        }

    truth = 50.0
    a = done(
        "",
        "Alpha",
        real["input_url"],
        {
            "eq9_accuracy": 0.41,
            "auc": 0.9,
            "psnr": 23.1,
            "ssim": 0.912,
            "colourfulness": 20.0,
            "colourfulness_truth": truth,
            "colourfulness_gap": -30.0,
        },
    )
    b = done(
        "b",
        "Beta",
        real["original_url"],
        {
            "eq9_accuracy": 0.55,
            "auc": 0.93,
            "psnr": None,
            "ssim": 0.9,
            "colourfulness": 62.0,
            "colourfulness_truth": truth,
            "colourfulness_gap": 12.0,
        },
    )
    failed = {
        **job,
        "id": job["id"] + "f",
        "method": "gamma",
        "method_title": "Gamma",
        "status": "failed",
        "error": "out of memory",
        "metrics": None,
    }
    return {**real, "finished": True, "jobs": [a, b, failed]}


def test_compare_pending_then_ranked_results(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    """Nothing consumes the idle stack's queue: the cards wait. Then the poll is answered with a finished
    comparison (two scored results, one failure): cards appear for it and the best value per column is
    marked."""
    page.goto(idle_stack.base_url + "/compare")
    page.set_input_files("#image", str(sample_photo()))
    # The method cards arrive after the page (GET /methods) and push the button down: a click during that
    # shift can miss it (a fresh-clone CI run once waited for a page that was never asked for).
    expect(page.locator("#submit .label")).to_have_text(re.compile(r"^Compare \d+ methods$"))
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/compare/[\w-]+/view$"))
    group = page.url.rstrip("/").split("/")[-2]
    card = page.locator('.cmp-card[data-kind="method"]').first
    expect(card.locator(".badge")).to_have_text("Queued")
    expect(card.locator(".cmp-overlay .spinner")).to_be_visible()
    expect(card.locator(".cmp-download")).to_be_hidden()
    expect(page.locator("#cmp-status")).to_have_text(re.compile(r"^0 of \d+ done$"))
    expect(page.locator("#metrics-body td").first).to_have_text("Waiting for the result…")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "compare-view-pending-1280.png"), full_page=True)

    fake = _ranked(httpx.get(f"{idle_stack.base_url}/compare/{group}").json())
    page.route(f"**/compare/{group}", lambda route: route.fulfill(json=fake))
    expect(page.locator("#cmp-status")).to_have_text("Done · 1 failed")
    expect(page.locator('.cmp-card[data-kind="method"]')).to_have_count(3)
    expect(page.locator('.cmp-card[data-method="gamma"] .cmp-card-error')).to_have_text("out of memory")
    best = {
        cell.get_attribute("data-metric"): cell.evaluate(
            "td => td.parentElement.querySelector('th').textContent"
        )
        for cell in page.locator("#metrics-body td.is-best").all()
    }
    assert best == {
        "eq9_accuracy": "Beta",
        "auc": "Beta",
        "psnr": "Beta",
        "ssim": "Alpha",
        "colourfulness": "Beta",
        "colourfulness_gap": "Beta",
    }, best
    row = page.locator(f'#metrics-body tr[data-job-id="{fake["jobs"][1]["id"]}"]')
    expect(row.locator('td[data-metric="psnr"]')).to_have_text(re.compile("^∞"))
    expect(row.locator('td[data-metric="colourfulness_gap"]')).to_have_text(re.compile(r"^\+12\.0"))
    expect(page.locator('#metrics-body tr[data-status="failed"] td')).to_contain_text("failed")
    expect(page.locator("#truth-colourfulness")).to_have_text("50.0")
    page.wait_for_function("[...document.images].every((i) => i.complete)")
    page.screenshot(path=str(SHOTS / "compare-view-ranked-1280.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(SHOTS / "compare-view-ranked-375.png"), full_page=True)

    # A job of the comparison links back to it.
    page.goto(idle_stack.base_url + f"/jobs/{fake['jobs'][0]['id']}/view")
    back = page.locator("#job-group a")
    expect(back).to_be_visible()
    expect(back).to_have_attribute("href", f"/compare/{group}/view")


def test_compare_with_reference_adds_exemplar(stack, page) -> None:  # type: ignore[no-untyped-def]
    """Ticking the exemplar method without a reference is explained; adding a reference ticks the fast
    reference method (the exemplar takes minutes: ticked by hand) and the comparison gets its card (the
    iterative job is cancelled at once to keep the test short)."""
    if not method_available("exemplar"):
        pytest.skip("exemplar needs VGG weights: run `colorlab weights fetch vgg16-hed`")
    page.goto(stack.base_url + "/compare")
    page.set_input_files("#image", str(sample_photo()))  # a colour photo: the table has a row per job
    exemplar = page.locator("#method-exemplar")
    expect(exemplar).not_to_be_checked()
    page.locator("label[data-method=exemplar]").click()
    page.locator("#submit").click()
    title = page.locator("label[data-method=exemplar] .method-title").inner_text()
    expect(page.locator("#reference-error")).to_have_text(
        f"“{title}” copies colours from a reference photo: add one here, or untick it."
    )
    page.locator("label[data-method=unet-bins-reference]").click()  # two reference methods are named both
    page.locator("#submit").click()
    expect(page.locator("#reference-error")).to_contain_text(" and “Colours from a reference, slow")
    expect(page.locator("#reference-error")).to_contain_text("copy colours from a reference photo")
    page.locator("label[data-method=unet-bins-reference]").click()
    assert "/view" not in page.url

    page.locator("label[data-method=exemplar]").click()  # untick: a reference ticks only the fast ones
    page.set_input_files("#reference", str(EXEMPLAR_PAIRS / "example" / "ref1.jpg"))
    expect(page.locator("#method-unet-bins-reference")).to_be_checked()
    expect(exemplar).not_to_be_checked()  # minutes, not seconds: the person ticks it
    page.locator("label[data-method=exemplar]").click()
    expect(exemplar).to_be_checked()
    expect(page.locator("#reference-error")).to_be_hidden()
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/compare/[\w-]+/view$"))
    card = page.locator('.cmp-card[data-method="exemplar"]')
    expect(card).to_be_visible()
    job_id = card.get_attribute("data-job-id")
    page.request.post(f"{stack.base_url}/jobs/{job_id}/cancel")  # as its maker
    expect(card.locator(".badge")).to_have_text("Cancelled", timeout=30_000)
    expect(page.locator(f'#metrics-body tr[data-job-id="{job_id}"] td')).to_contain_text("cancelled")


def test_compare_with_a_picked_example_reference(stack, page) -> None:  # type: ignore[no-untyped-def]
    """Picking a bundled example as the reference ticks the reference-guided method, which runs with it."""
    page.goto(stack.base_url + "/compare")
    page.set_input_files("#image", str(sample_photo()))
    guided = page.locator("#method-unet-bins-reference")
    expect(guided).not_to_be_checked()
    page.locator("#reference-list .ref-option").first.click()
    expect(guided).to_be_checked()
    keep = ["unet-bins", "unet-bins-reference"]  # two quick methods: untick the others as a person would
    page.evaluate(
        """keep => document.querySelectorAll('input[name="methods"]:checked')
             .forEach((box) => { if (!keep.includes(box.value)) box.click(); })""",
        keep,
    )
    expect(page.locator('input[name="methods"]:checked')).to_have_count(2)
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/compare/[\w-]+/view$"))
    card = page.locator('.cmp-card[data-method="unet-bins-reference"]')
    expect(card.locator(".badge")).to_have_text("Done", timeout=90_000)
    job = httpx.get(f"{stack.base_url}/jobs/{card.get_attribute('data-job-id')}").json()
    assert job["urls"]["reference"]
