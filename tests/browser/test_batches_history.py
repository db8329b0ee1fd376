"""Batches, names, history selection/deletion, queue position and exemplar presets in headless Chromium
against real server and worker processes."""

from __future__ import annotations

import io
import math
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
    assert sorted(archive.namelist()) == sorted(f"{p.stem}-cnn.png" for p in photos)
    assert f"colorlab-batch-{batch_id[:8]}" in info.value.suggested_filename

    # The history shows the batch as one card (a mosaic of its photos); a single photo as its own card. Both
    # selected download as one zip; the batch is deleted with one click.
    single = {"name": "lakeside.jpg", "mimeType": "image/jpeg", "buffer": photo("975_").read_bytes()}
    r = page.request.post(stack.base_url + "/colorize", multipart={"image": single, "method": "cnn"})
    assert r.status == 202, r.text()
    page.goto(stack.base_url + "/history")
    cards = page.locator("#job-grid .job-card")
    expect(cards).to_have_count(2)
    batch_card = page.locator(f'.group-card[data-entry-id="{batch_id}"]')
    expect(batch_card.locator(".job-card-name")).to_have_text("Batch of 3 photos")
    expect(batch_card.locator(".group-summary")).to_have_text("3 done")
    expect(batch_card.locator(".job-mosaic img")).to_have_count(3)
    cards.nth(0).locator(".job-check").check()
    expect(page.locator("#download-selected")).to_have_text("Download selected (1)", timeout=60_000)
    batch_card.locator(".job-check").check()
    expect(page.locator("#download-selected")).to_have_text("Download selected (4)")
    with page.expect_download() as info:
        page.locator("#download-selected").click()
    names = zipfile.ZipFile(info.value.path()).namelist()
    assert len(names) == 4 and {f"{p.stem}-cnn.png" for p in photos} <= set(names)
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("#delete-selected").click()  # both chosen: said as chosen, then dismissed
    cards.nth(0).locator(".job-check").uncheck()
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.locator("#delete-selected").click()  # the batch alone
    expect(batch_card).to_have_count(0)
    expect(page.locator("#history-status")).to_have_text("Deleted 1 batch (3 photos).")
    assert asked == [
        "Delete 1 job and 1 batch (4 jobs in all) and their images?",
        "Delete 1 batch (3 photos) and their images?",
    ]
    assert httpx.get(f"{stack.base_url}/batches/{batch_id}").status_code == 404
    page.reload()
    expect(page.locator(".job-card")).to_have_count(1)


def test_history_follows_a_batch_card_and_the_batch_page_deletes_it(stack, page) -> None:  # type: ignore[no-untyped-def]
    files = [
        {"name": f"p{i}.jpg", "mimeType": "image/jpeg", "buffer": photo(f"00{i + 1}_").read_bytes()}
        for i in range(2)
    ]
    page.goto(stack.base_url + "/")  # the browser's cookie: its history
    r = page.request.post(stack.base_url + "/batches", multipart={"images": files[0], "method": "cnn"})
    assert r.status == 202, r.text()
    one = r.json()["id"]
    # two photos in one multipart request (Playwright's multipart takes one file per field name)
    created = httpx.post(
        stack.base_url + "/batches",
        files=[("images", (f["name"], f["buffer"], "image/jpeg")) for f in files],
        data={"method": "cnn"},
        cookies={c["name"]: c["value"] for c in page.context.cookies()},
    )
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]
    page.goto(stack.base_url + "/history")
    card = page.locator(f'.group-card[data-entry-id="{batch_id}"]')
    expect(card.locator(".group-summary")).to_have_text("2 done", timeout=120_000)
    expect(card.locator(".badge")).to_have_text("Done")
    expect(card.locator(".job-mosaic img").first).to_have_attribute("src", re.compile(r"of=result$"))
    expect(page.locator(f'.job-card[data-kind="job"] a[href="/batches/{one}/view"]')).to_have_count(1)

    card.locator(".job-card-link").click()
    page.wait_for_url(re.compile(rf"/batches/{batch_id}/view$"))
    expect(page.locator("#delete-batch")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#delete-batch").click()
    page.wait_for_url(re.compile(r"/history$"))
    expect(page.locator(f'.group-card[data-entry-id="{batch_id}"]')).to_have_count(0)
    assert httpx.get(f"{stack.base_url}/batches/{batch_id}").status_code == 404


def test_a_tapped_photo_of_a_batch_opens_in_view_on_a_phone(stack, phone_page) -> None:  # type: ignore[no-untyped-def]
    """The before/after opens where the finger is: scrolled to before its images had loaded, it ended below
    a phone's screen (the top of the photo at 723 px of 740)."""
    names = ("001_", "002_", "003_", "005_", "097_", "975_")
    files = [("images", (f"p{i}.jpg", photo(n).read_bytes(), "image/jpeg")) for i, n in enumerate(names)]
    created = httpx.post(stack.base_url + "/batches", files=files, data={"method": "cnn"})
    assert created.status_code == 202, created.text
    phone_page.goto(stack.base_url + created.json()["page_url"])
    expect(phone_page.locator('#batch-grid .job-card[data-status="done"]')).to_have_count(6, timeout=120_000)
    phone_page.locator("#batch-grid .job-card-link").first.tap()
    expect(phone_page.locator("#compare-base")).to_have_js_property("complete", True)
    phone_page.wait_for_timeout(300)  # its load handler has run
    top, bottom, screen = phone_page.evaluate(
        "(r => [r.top, r.bottom, innerHeight])(document.getElementById('compare').getBoundingClientRect())"
    )
    assert 0 <= top < screen / 2 and bottom > top + 100, f"the photo at {top:.0f}-{bottom:.0f} of {screen} px"


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
    in_line = re.compile(r"^2nd in line · done in (under a second|a few seconds|about)")
    expect(page.locator("#progress-message")).to_have_text(in_line)
    page.goto(f"{idle_stack.base_url}/jobs/{ids[0]}/view")
    expect(page.locator("#progress-message")).to_have_text(re.compile(r"^Next in line"))


def test_a_batch_is_stopped_from_its_page_and_kept(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    """Nothing consumes the idle stack's queue: "Stop the rest" cancels the photos still to do, and the
    batch stays (with its photos), to be deleted or not."""
    one = {"name": "p1.jpg", "mimeType": "image/jpeg", "buffer": photo("001_").read_bytes()}
    page.goto(idle_stack.base_url + "/")  # the browser's cookie: its maker
    r = page.request.post(f"{idle_stack.base_url}/batches", multipart={"method": "cnn", "images": one})
    assert r.status == 202, r.text()
    batch_id = r.json()["id"]
    page.goto(f"{idle_stack.base_url}/batches/{batch_id}/view")
    stop = page.locator("#stop-batch")
    expect(stop).to_be_visible()
    stop.click()
    expect(page.locator("#batch-message")).to_have_text(re.compile(r"^Finished: 0 colorized, 1 failed"))
    expect(stop).to_be_hidden()
    expect(page.locator("#delete-batch")).to_be_visible()
    batch = page.request.get(f"{idle_stack.base_url}/batches/{batch_id}").json()
    assert batch["counts"] == {"cancelled": 1}


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
    job = page.request.get(f"{stack.base_url}/jobs/{again}").json()  # as its maker: rerun_of
    assert (
        job["method"] == "exemplar" and job["urls"]["reference"] and job["rerun_of"] == first.split("/")[-2]
    )
    assert {k: job["params"][k] for k in ("mode", "iterations", "size")} == {
        "mode": "fast",
        "iterations": 50,
        "size": 256,
    }
    page.request.delete(f"{stack.base_url}/jobs/{again}")  # no need to let it run


def test_a_preset_over_the_time_limit_says_it_stops_there(stack, page) -> None:  # type: ignore[no-untyped-def]
    """A server whose time limit is shorter than the Paper preset's expected time (its GET /methods says
    so): the preset and the expected time warn that the job stops at the limit with the colours reached."""
    if not method_available("exemplar"):
        pytest.skip("exemplar needs VGG weights: run `colorlab weights fetch vgg16-hed`")

    # The limit sits between Balanced and Paper, whole minutes above Balanced's estimate: that estimate
    # follows this server's recent exemplar jobs, minutes on a loaded machine.
    limit_minutes: list[int] = []

    def short_limit(route) -> None:  # type: ignore[no-untyped-def]
        methods = route.fetch().json()
        exemplar = next(m for m in methods if m["name"] == "exemplar")
        expected = {p["name"]: p["expected_seconds"] for p in exemplar["presets"]}
        minutes = max(5, math.ceil(expected["balanced"] / 60) + 1)
        assert expected["paper"] > minutes * 60, expected  # Paper's 1000 iterations pass it
        limit_minutes.append(minutes)
        for method in methods:
            method["time_limit_seconds"] = minutes * 60
            for preset in method["presets"]:
                preset["over_time_limit"] = preset["expected_seconds"] > minutes * 60
        route.fulfill(json=methods)

    page.route(re.compile(r".*/methods$"), short_limit)
    page.goto(stack.base_url + "/")
    page.locator("label[data-method=exemplar]").click()
    expect(page.locator('.preset[data-preset="balanced"] .preset-time')).not_to_contain_text("over the limit")
    expect(page.locator("#expected-time")).not_to_have_class(re.compile("expected-over-limit"))
    page.locator('.preset[data-preset="paper"]').click()
    expect(page.locator('.preset[data-preset="paper"] .preset-time')).to_contain_text("over the limit")
    expect(page.locator("#expected-time")).to_have_class(re.compile("expected-over-limit"))
    expect(page.locator("#expected-time")).to_contain_text(
        f"more than its limit of {limit_minutes[-1]} min per job: the colorization stops at the limit and "
        "keeps the colours"
    )


def test_a_finished_job_is_deleted_from_its_own_page(stack, page) -> None:  # type: ignore[no-untyped-def]
    job_id = colorize_lakeside(stack.base_url, page)  # this browser's job: it may delete it
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


def test_a_shared_job_page_views_but_offers_no_delete(stack, page) -> None:  # type: ignore[no-untyped-def]
    """A job made by another browser or program (a shared link): its page shows the result, no Delete."""
    job_id = colorize_lakeside(stack.base_url)  # made by a program of its own, not this browser
    page.goto(f"{stack.base_url}/jobs/{job_id}/view")
    expect(page.locator("#job-status")).to_have_text("Done")
    expect(page.locator("#compare-top")).to_be_visible()
    expect(page.get_by_role("button", name="Delete")).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    refused = page.request.delete(f"{stack.base_url}/jobs/{job_id}")
    assert refused.status == 403 and "program that made this job" in refused.json()["detail"]
    assert httpx.get(f"{stack.base_url}/jobs/{job_id}").status_code == 200


def test_a_folder_upload_leaves_out_hidden_files_and_macos_junk(stack, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "scans"
    for relative in ("a.jpg", "box/b.jpg", ".thumbnails/a.jpg", "__MACOSX/box/._b.jpg", "box/._b.jpg"):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(photo("001_").read_bytes())
    page.goto(stack.base_url + "/")
    page.set_input_files("#batch-folder", str(folder))  # a folder picked as a person picks one
    expect(page.locator("#batch-count")).to_contain_text("2 files")  # a.jpg and box/b.jpg


def test_a_batch_over_the_size_limit_is_refused_before_it_is_sent(stack, page) -> None:  # type: ignore[no-untyped-def]
    """The page knows BATCH_MAX_BYTES (its help says it): a batch over it is not uploaded whole to be
    refused with a 413, it is refused at once with what to do."""
    page.goto(stack.base_url + "/")
    expect(page.locator("#batch-help")).to_contain_text("photos and 300 MB together")
    page.evaluate("document.getElementById('batch-pick').dataset.maxBytes = '1000'")  # a small server
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.set_input_files("#batch-files", [str(photo(p)) for p in ("001_", "002_")])
    page.locator("#submit").click()
    expect(page.locator("#image-error")).to_contain_text("a batch takes at most 300 MB")
    expect(page.locator("#image-error")).to_contain_text("choose fewer, or send them as several batches")
    assert sent == [] and page.url.rstrip("/") == stack.base_url


def test_a_multi_page_tiff_chosen_as_the_photo_is_colorized_page_by_page(stack, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An album scanned into one TIFF: the page says how many pages it holds and sends it as a batch."""
    from PIL import Image

    pages = [Image.open(photo(prefix)).convert("L").resize((96, 64)) for prefix in ("001_", "002_", "003_")]
    album = tmp_path / "album.tif"
    pages[0].save(album, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    page.goto(stack.base_url + "/")
    page.set_input_files("#image", str(album))
    expect(page.locator("#image-pages")).to_have_text(re.compile(r"holds 3 pages"))
    expect(page.locator("#submit .label")).to_have_text("Colorize all")
    page.locator("label[data-method=cnn]").click()
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/batches/[\w-]+/view$"))
    names = page.locator("#batch-grid .job-card-name")
    expect(names).to_have_count(3)
    expect(names).to_have_text(["album-page1.tif", "album-page2.tif", "album-page3.tif"])
    # a photo of one page again: a single job, as ever
    page.goto(stack.base_url + "/")
    page.set_input_files("#image", str(photo("001_")))
    expect(page.locator("#image-pages")).to_be_hidden()
    expect(page.locator("#submit .label")).to_have_text("Colorize")
