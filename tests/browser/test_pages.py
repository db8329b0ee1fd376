"""The pages people use, in headless Chromium against real server and worker processes."""

from __future__ import annotations

import base64
import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sample_photo, start_stack, submit_small_exemplar
from tests.conftest import EXEMPLAR_PAIRS, method_available

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_upload_cnn_shows_result_and_history(stack, page) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("the bundled cnn weights (worker/colorizers/weights/cnn.pt) are missing")
    page.goto(stack.base_url + "/")
    expect(page.locator("#method-cnn")).to_be_enabled()
    page.set_input_files("#image", str(sample_photo()))
    expect(page.locator("#image-drop .dropzone-preview img")).to_be_visible()
    page.locator("label[data-method=cnn]").click()
    expect(page.locator("#method-cnn")).to_be_checked()
    expect(page.locator("#reference-section")).to_be_hidden()
    page.locator("#submit").click()

    page.wait_for_url(re.compile(r"/jobs/[\w-]+/view$"))
    job_id = page.url.rstrip("/").split("/")[-2]
    expect(page.locator("#job-status")).to_have_text("Done", timeout=60_000)
    result = page.locator("#compare-top")
    expect(result).to_have_attribute("src", f"/jobs/{job_id}/result.png")
    page.wait_for_function("document.getElementById('compare-top').naturalWidth > 0")
    expect(page.locator("#download")).to_have_attribute("href", f"/jobs/{job_id}/result.png")
    # Named after the upload: <original stem>-<method>.png
    expect(page.locator("#download")).to_have_attribute("download", f"{sample_photo().stem}-cnn.png")
    expect(page.locator("#job-title")).to_have_text(sample_photo().name)
    # The photo is a colour JPEG: its original is offered as ground truth.
    expect(page.locator("#sbs-original-fig")).to_be_visible()
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#job-group")).to_be_hidden()  # a lone job: no comparison to link to
    # The slider reveals more of the colorized image.
    page.locator("#compare-range").fill("80")
    assert page.locator("#compare").evaluate("el => el.style.getPropertyValue('--pos')") == "80%"

    page.goto(stack.base_url + "/history")
    card = page.locator(f'.job-card[data-job-id="{job_id}"]')
    expect(card).to_be_visible()
    expect(card.locator(".badge")).to_have_text("Done")
    expect(card.locator("img")).to_have_attribute("src", f"/jobs/{job_id}/thumb.jpg?of=result")
    card.locator("a").click()
    page.wait_for_url(f"**/jobs/{job_id}/view")


def test_history_empty_state(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(idle_stack.base_url + "/history")
    expect(page.get_by_role("heading", name="No colorizations yet")).to_be_visible()


def test_a_phone_is_not_asked_to_drag_or_paste(idle_stack, page, phone_page) -> None:  # type: ignore[no-untyped-def]
    for viewer, touch in ((page, False), (phone_page, True)):
        viewer.goto(idle_stack.base_url + "/")
        expect(viewer.locator("#image-hint")).to_contain_text("JPEG")
        title = viewer.locator(
            "#image-drop .dropzone-title"
        ).inner_text()  # as rendered: hidden parts left out
        assert title == ("Choose a file" if touch else "Drag a photo here or choose a file"), title
        assert ("paste" in viewer.locator("#image-hint").inner_text()) is not touch


def test_unavailable_method_is_disabled_with_reason(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    methods = httpx.get(idle_stack.base_url + "/methods").json()
    unavailable = [m for m in methods if not m["available"]]
    assert unavailable, "with an empty weights directory some method must be unavailable"
    page.goto(idle_stack.base_url + "/")
    for method in unavailable:
        expect(page.locator(f"#method-{method['name']}")).to_be_disabled()
        reason = page.locator(f'label[data-method="{method["name"]}"] .method-reason')
        expect(reason).to_be_visible()
        # Plain words for people; the command that installs it is for the administrator (GET /methods).
        expect(reason).to_have_text("Not installed on this server")
        assert method["admin_hint"].startswith("colorlab weights fetch")
    # A screen reader hears each card's title as its name, the rest once, as its description.
    for method in methods:
        radio = page.locator(f"#method-{method['name']}")
        expect(radio).to_have_accessible_name(method["title"])
        expect(radio).to_have_accessible_description(re.compile("^" + re.escape(method["summary"])))
        if not method["available"]:
            expect(radio).to_have_accessible_description(re.compile("Not installed on this server"))
    expect(page.locator("#method-list")).not_to_contain_text("colorlab weights")
    # The methods page says the same; the command waits, folded, for the administrator.
    page.goto(idle_stack.base_url + "/methods/view")
    for method in unavailable:
        notice = page.locator(f"#method-{method['name']} .method-unavailable")
        expect(notice).to_contain_text("Not installed on this server")
        command = notice.locator("details code").first
        expect(command).to_be_hidden()
        notice.locator("summary", has_text="For the administrator").click()
        expect(command).to_be_visible()
        expect(command).to_contain_text("colorlab weights fetch")


def test_exemplar_without_reference_explains(stack, page) -> None:  # type: ignore[no-untyped-def]
    if not method_available("exemplar"):
        pytest.skip("exemplar needs VGG weights: run `colorlab weights fetch vgg16-hed`")
    page.goto(stack.base_url + "/")
    page.set_input_files("#image", str(EXEMPLAR_PAIRS / "example" / "in1.jpg"))
    page.locator("label[data-method=exemplar]").click()
    section = page.locator("#reference-section")
    expect(section).to_be_visible()
    expect(section.locator("#reference-help")).to_contain_text("reference colour photo")
    expect(section.locator("#reference-help")).to_contain_text("the colours you want")
    # Bundled examples are offered to pick from.
    expect(page.locator('.ref-option[data-source="example"]').first).to_be_visible()
    page.locator("#submit").click()
    error = page.locator("#reference-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("needs a reference image")
    assert "/view" not in page.url  # nothing was submitted


DROP_FILE = """async ([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/jpeg" }));
  const zone = document.getElementById("image-drop");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
  }
}"""


def test_cancel_queued_job(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    """The photo arrives by drag and drop; nothing consumes the queue, so the job waits until cancelled."""
    page.goto(idle_stack.base_url + "/")
    source = sample_photo()
    page.evaluate(DROP_FILE, [base64.b64encode(source.read_bytes()).decode(), source.name])
    expect(page.locator("#image-drop .file-name")).to_have_text(source.name)
    page.locator("label[data-method=cnn]").click()
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/jobs/[\w-]+/view$"))
    expect(page.locator("#job-status")).to_have_text("Queued")
    cancel = page.locator("#cancel")
    expect(cancel).to_be_visible()
    cancel.click()
    expect(page.locator("#job-status")).to_have_text("Cancelled")
    expect(page.locator("#cancelled-section")).to_be_visible()
    expect(cancel).to_be_hidden()
    job_id = page.url.rstrip("/").split("/")[-2]
    assert httpx.get(f"{idle_stack.base_url}/jobs/{job_id}").json()["status"] == "cancelled"
    # The cancelled job shows its photo and runs again as it was: a new job on the same photo and method.
    expect(page.locator("#stopped-img")).to_have_attribute("src", f"/jobs/{job_id}/thumb.jpg?of=input")
    page.locator("#run-again").click()
    page.wait_for_url(lambda url: url.endswith("/view") and job_id not in url)
    again = page.url.rstrip("/").split("/")[-2]
    job = page.request.get(f"{idle_stack.base_url}/jobs/{again}").json()  # as its maker: rerun_of
    assert job["rerun_of"] == job_id and job["method"] == "cnn" and job["source_name"] == source.name
    expect(page.locator("#job-status")).to_have_text("Queued")


def test_upload_error_is_shown_inline(stack, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A file that is not an image (but claims to be) gets the server's `detail` beside the photo it is
    about (its `field`), which gets the focus; choosing another file clears it."""
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"this is not an image at all")
    page.goto(stack.base_url + "/")
    page.set_input_files("#image", str(fake))
    enabled = page.locator(".method-card:not(.is-disabled)")
    expect(enabled.first).to_be_visible()
    enabled.first.click()
    if page.locator("#reference-section").is_visible():
        page.locator('.ref-option[data-source="example"]').first.click()
    page.locator("#submit").click()
    error = page.locator("#image-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile(r"^The photo: not a supported image"))
    expect(page.locator("#form-error")).to_be_hidden()
    expect(page.locator("#image")).to_be_focused()
    assert "/view" not in page.url
    page.set_input_files("#image", str(sample_photo()))
    expect(error).to_be_hidden()


def test_unknown_job_page_is_404(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(idle_stack.base_url + "/jobs/nope/view")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()


def test_exemplar_live_progress_then_cancel(stack, page) -> None:  # type: ignore[no-untyped-def]
    """An iterative job shows k/N, its losses and a live preview while it runs, and a running job cancels."""
    if not method_available("exemplar"):
        pytest.skip("exemplar needs VGG weights: run `colorlab weights fetch vgg16-hed`")
    page.goto(stack.base_url + "/")
    page.set_input_files("#image", str(EXEMPLAR_PAIRS / "example" / "in1.jpg"))
    page.locator("label[data-method=exemplar]").click()
    submit_small_exemplar(page)

    expect(page.locator("#iteration")).to_have_text(re.compile(r"^[1-9]\d* / 500$"), timeout=60_000)
    expect(page.locator("#losses dt").first).to_be_visible()
    expect(page.locator("#preview")).to_have_attribute("src", re.compile(r"/preview\.png\?"), timeout=20_000)
    expect(page.locator("#progress")).to_have_attribute("aria-valuenow", re.compile(r"^\d+$"))
    page.locator("#cancel").click()
    expect(page.locator("#job-status")).to_have_text("Cancelled")
    expect(page.locator("#live")).to_be_hidden()


def test_methods_page_from_the_footer(stack, page) -> None:  # type: ignore[no-untyped-def]
    """Every page's footer leads to the methods described for people; it fits a phone."""
    methods = httpx.get(stack.base_url + "/methods").json()
    page.goto(stack.base_url + "/history")
    page.locator(".site-footer").get_by_role("link", name="Methods", exact=True).click()
    page.wait_for_url(re.compile(r"/methods/view$"))
    expect(page.locator(".method-entry h2")).to_have_count(len(methods))
    default = next(m for m in methods if m["default"])
    entry = page.locator(f"#method-{default['name']}")
    expect(entry.locator(".tag", has_text="default")).to_be_visible()
    expect(entry.locator(".method-options tbody tr")).to_have_count(len(default["params"]))
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # each option's lines fit too (a table would hide "What it does" behind a sideways scroll)
    tables = "[...document.querySelectorAll('.method-options')]"
    widest = f"Math.max(...{tables}.map(t => t.scrollWidth - t.clientWidth))"
    assert page.evaluate(widest) <= 0
    expect(entry.locator(".method-options td[data-label='What it does']").first).to_be_visible()


def test_an_exemplar_run_past_the_time_limit_keeps_its_colours(tmp_path, page) -> None:  # type: ignore[no-untyped-def]
    """On a server that stops jobs after 20 s, a 5000-iteration exemplar run stops just before, finished,
    with its result and a note saying how far it got."""
    if not method_available("exemplar"):
        pytest.skip("exemplar needs VGG weights: run `colorlab weights fetch vgg16-hed`")
    stacks = start_stack(tmp_path, worker=True, JOB_TIME_LIMIT=20)
    stack = next(stacks)
    try:
        page.goto(stack.base_url + "/")
        page.set_input_files("#image", str(EXEMPLAR_PAIRS / "example" / "in1.jpg"))
        page.locator("label[data-method=exemplar]").click()
        page.locator('.ref-option[data-source="example"]').first.click()
        if not page.locator("#opt-size").is_visible():
            page.locator("#options-section summary").click()
        page.fill("#opt-size", "32")
        page.fill("#opt-iterations", "5000")
        page.locator("#submit").click()
        page.wait_for_url(re.compile(r"/jobs/[\w-]+/view$"))
        expect(page.locator("#job-status")).to_have_text("Done", timeout=60_000)
        note = page.locator("#result-note")
        expect(note).to_be_visible()
        expect(note).to_contain_text(
            re.compile(r"^Stopped after iteration \d+ of 5000: the server's time limit")
        )
        expect(note).to_contain_text("this is the result so far")
        expect(page.locator("#details")).to_contain_text(re.compile(r"Iterations run\d+ of 5000"))
        expect(page.locator("#download")).to_be_visible()
    finally:
        stacks.close()


def test_a_slow_upload_shows_its_progress_and_locks_the_form(stack, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Over a slow link the button counts the upload up, and the form cannot be changed meanwhile (what is
    sent is fixed once Colorize is pressed); "Stop the upload" stores nothing; sent again, the job page
    opens."""
    import numpy as np
    from PIL import Image

    noisy = tmp_path / "big.png"  # noise does not compress: about 1.2 MB
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (640, 640, 3), dtype=np.uint8)).save(noisy)
    page.goto(stack.base_url + "/")
    page.set_input_files("#image", str(noisy))
    page.locator("label[data-method=cnn]").click()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 200_000},
    )

    def stored_jobs() -> float:  # every job of the server, by /metrics' colorlab_jobs
        text = httpx.get(stack.base_url + "/metrics", timeout=10).text
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("colorlab_jobs{"))

    jobs_before = stored_jobs()
    # Stopped halfway: nothing is stored, the form is as it was
    page.locator("#submit").click()
    expect(page.locator("#submit .label")).to_have_text(re.compile(r"^Uploading… \d{1,2}%$"), timeout=10_000)
    page.locator("#stop-upload").click()
    expect(page.locator("#stop-upload")).to_be_hidden()
    expect(page.locator("#submit")).to_be_enabled()
    expect(page.locator("#submit .label")).to_have_text("Colorize")
    expect(page.locator("#method-cnn")).to_be_enabled()
    expect(page.locator("#form-error")).to_be_hidden()
    page.wait_for_timeout(500)  # a request that did arrive would be a job by now
    assert stored_jobs() == jobs_before
    # Sent again: it counts up, locked meanwhile
    page.locator("#submit").click()
    expect(page.locator("#submit .label")).to_have_text(re.compile(r"^Uploading… \d{1,2}%$"), timeout=10_000)
    expect(page.locator("#method-cnn")).to_be_disabled()  # locked while it uploads
    expect(page.locator("#image")).to_be_disabled()
    expect(page.locator("#stop-upload")).to_be_enabled()
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.wait_for_url(re.compile(r"/jobs/[\w-]+/view$"), timeout=60_000)
