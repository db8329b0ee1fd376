"""The HTML pages as the server renders them (the browser side is in tests/browser)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from backend import static_files
from backend.routes import pages
from backend.static_files import static_url
from tests.conftest import migrate, photo_bytes

HTML = {"Accept": "text/html"}


@pytest.fixture
def web():  # type: ignore[no-untyped-def]
    from backend.main import create_app

    migrate()
    with TestClient(create_app()) as c:
        yield c


def test_upload_page_has_form_and_no_inline_script(web) -> None:  # type: ignore[no-untyped-def]
    r = web.get("/", headers=HTML)
    assert r.status_code == 200
    html = r.text
    assert 'id="upload-form"' in html and f'src="{static_url("upload.js")}"' in html
    assert "<script>" not in html and " style=" not in html and "onclick" not in html
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "colorlab_client" in r.headers.get("set-cookie", "")


def test_static_assets_are_served(web) -> None:  # type: ignore[no-untyped-def]
    for path in (
        "/static/app.css",
        "/static/common.js",
        "/static/upload.js",
        "/static/job.js",
        "/static/history.js",
        "/static/compare.js",
        "/static/compare.css",
        "/static/logo.svg",
    ):
        assert web.get(path).status_code == 200, path


def test_pages_link_assets_by_content_so_browsers_keep_them(web, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every asset a page links names its content's hash; that address may be kept for a year, any other is
    revalidated; an edited file gets a new address."""
    pages_html = [web.get(path, headers=HTML).text for path in ("/", "/history", "/methods", "/compare")]
    pages_html.append(web.get("/nope", headers=HTML).text)  # the 404 page has the same head
    links = {link for html in pages_html for link in re.findall(r'(?:src|href)="(/static/[^"]*)"', html)}
    assert {"/static/app.css", "/static/common.js", "/static/logo.svg"} <= {
        link.split("?")[0] for link in links
    }
    for link in links:
        name, _, version = link.removeprefix("/static/").partition("?v=")
        assert version and version == static_files.asset_version(name), link
        kept = web.get(link)
        assert kept.status_code == 200 and kept.headers["cache-control"] == static_files.FOREVER, link
        assert kept.content == (static_files.STATIC_DIR / name).read_bytes()
    for other in ("/static/app.css", "/static/app.css?v=0123456789ab"):  # unversioned, or another version
        r = web.get(other)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache" and r.headers["etag"], other
        assert web.get(other, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    # a file edited in place gets a new version (no restart: keyed by its time and size)
    monkeypatch.setattr(static_files, "STATIC_DIR", tmp_path)
    (tmp_path / "a.css").write_text("body { color: red }")
    first = static_files.static_url("a.css")
    (tmp_path / "a.css").write_text("body { color: blue; }")
    assert static_files.static_url("a.css") != first and first.startswith("/static/a.css?v=")
    with pytest.raises(ValueError, match="no static file"):
        static_files.static_url("missing.css")


def test_history_shows_a_batch_or_comparison_as_one_card(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On SQLite and PostgreSQL (the grouping is one SQL query)."""
    monkeypatch.setattr(pages, "HISTORY_PAGE_SIZE", 2)
    files = [("images", (f"p{i}.jpg", photo_bytes("001_"), "image/jpeg")) for i in range(3)]
    created = client.post("/batches", files=files, data={"method": "cnn"})
    assert created.status_code == 202, created.text
    batch = created.json()["id"]
    one = client.post("/batches", files=files[:1], data={"method": "cnn"}).json()[
        "id"
    ]  # a batch of one photo
    r = client.post(
        "/compare", files={"image": ("tench.jpg", photo_bytes("000_"))}, data={"methods": "cnn,gan"}
    )
    assert r.status_code == 202, r.text
    group = r.json()["id"]

    newest = client.get(
        "/history", headers=HTML
    ).text  # 6 jobs, 3 cards: the comparison, the photo, the batch
    assert "1–2 of 3" in newest and 'href="/history?page=2"' in newest and "Older" in newest
    assert newest.count('class="job-card group-card"') == 1 and newest.count('class="job-card"') == 1
    assert f'data-status-url="/compare/{group}"' in newest and f'href="/compare/{group}/view"' in newest
    assert "tench.jpg" in newest and "Compared with 2 methods" in newest and "0 of 2 done" in newest
    assert f'href="/batches/{one}/view">Its batch' in newest  # one photo stays a photo, with its batch
    older = client.get("/history?page=2", headers=HTML).text
    assert "3–3 of 3" in older and 'href="/history?page=1"' in older
    assert f'data-entry-id="{batch}"' in older and f'href="/batches/{batch}/view"' in older
    assert "Batch of 3 photos" in older and 'data-count="3"' in older and 'data-total="3"' in older
    assert older.count('class="job-card"') == 0 and older.count("thumb.jpg?of=input") == 3
    assert "No more colorizations" in client.get("/history?page=9", headers=HTML).text
    assert client.get("/history?page=0", headers=HTML).status_code == 422
    assert client.get("/history?page=x", headers=HTML).status_code == 422


def test_history_tells_a_rerun_from_its_original(web) -> None:  # type: ignore[no-untyped-def]
    first = web.post("/colorize", files={"image": ("cat.jpg", photo_bytes("001_"), "image/jpeg")})
    assert first.status_code == 202, first.text
    hint = '[{"x": 0.5, "y": 0.5, "color": "#3a7bd5"}]'
    again = web.post(f"/jobs/{first.json()['id']}/rerun", data={"vividness": "0.8", "hints": hint})
    assert again.status_code == 202, again.text
    html = web.get("/history", headers=HTML).text
    assert html.count('class="job-card-name">cat.jpg</span>') == 2  # same photo, same method...
    assert html.count('class="job-card-variant"') == 1  # ...and the re-run says how it differs
    assert '<span class="job-card-variant">Re-run · vividness 0.8 · 1 hint</span>' in html


def test_methods_page_says_what_each_method_is(web) -> None:  # type: ignore[no-untyped-def]
    methods = web.get("/methods").json()
    html = web.get("/methods/view", headers=HTML).text
    for m in methods:
        assert f'id="method-{m["name"]}"' in html and m["title"] in html
        for param in m["params"]:
            assert f"<code>{param['name']}</code>" in html
        if not m["available"]:  # how to install it, the command as code
            assert "Not installed on this server" in html
    assert html.count('class="panel method-entry"') == len(methods)
    assert "safer (0.0) … more vivid (1.0)" in html  # a slider's plain-words ends
    assert 'href="/methods/view"' in html  # the footer's link on every page
    # a fresh server (no job finished yet) agrees with the descriptions' "well under a second"
    unet = html[html.index('id="method-unet-bins"') :]
    assert unet[: unet.index("</li>\n")].count('class="method-expected">under a second<') == 1
    assert (
        pages.about(0.3) == "under a second"
        and pages.about(3) == "a few seconds"
        and pages.about(42) == "about 40 s"
        and pages.about(150) == "about 3 min"
    )


def test_group_summary_words() -> None:
    from collections import Counter

    assert pages.group_summary(Counter({"done": 12}), 12) == "12 done"
    assert (
        pages.group_summary(Counter({"done": 7, "running": 4, "failed": 1}), 12) == "7 of 12 done · 1 failed"
    )
    assert pages.group_summary(Counter({"cancelled": 2}), 2) == "0 of 2 done · 2 cancelled"


def test_history_empty_then_lists_this_browser_jobs(web) -> None:  # type: ignore[no-untyped-def]
    assert "No colorizations yet" in web.get("/history", headers=HTML).text
    files = {"image": ("fish.jpg", photo_bytes("001_"), "image/jpeg")}
    created = web.post("/colorize", files=files, data={"method": "cnn"})
    if created.status_code == 409:
        pytest.skip(created.json()["detail"])
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    html = web.get("/history", headers=HTML).text
    assert f'data-job-id="{job_id}"' in html and f'href="/jobs/{job_id}/view"' in html
    assert f'src="/jobs/{job_id}/thumb.jpg?of=input"' in html  # a small stored JPEG of the input until done
    thumb = web.get(f"/jobs/{job_id}/thumb.jpg?of=input")
    assert (
        thumb.headers["content-type"] == "image/jpeg"
        and max(Image.open(io.BytesIO(thumb.content)).size) == 320
    )
    assert web.get(f"/jobs/{job_id}/thumb.jpg?of=result").status_code == 409  # no result yet
    # Another browser (no cookie) sees its own, empty history.
    other = TestClient(web.app)
    assert "No colorizations yet" in other.get("/history", headers=HTML).text
    page = web.get(f"/jobs/{job_id}/view", headers=HTML)
    assert page.status_code == 200 and f'data-job-url="/jobs/{job_id}"' in page.text
    assert '<p class="job-group" id="job-group" hidden>' in page.text  # not part of a comparison


def test_unknown_job_page_is_an_html_404(web) -> None:  # type: ignore[no-untyped-def]
    r = web.get("/jobs/no-such-job/view", headers=HTML)
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"] and "Page not found" in r.text
    api = web.get("/jobs/no-such-job", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json()["detail"]


def test_relative_times() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert pages._when(now - timedelta(seconds=5), now) == "just now"
    assert pages._when(now - timedelta(minutes=3), now) == "3 min ago"
    assert pages._when(now - timedelta(hours=1), now) == "1 hour ago"
    assert pages._when(now - timedelta(days=3), now) == "28 Apr, 12:00 UTC"
    assert pages._when(now - timedelta(days=400), now) == "27 Mar 2025"


def test_compare_pages(web) -> None:  # type: ignore[no-untyped-def]
    form = web.get("/compare", headers=HTML)
    assert form.status_code == 200
    assert 'id="compare-form"' in form.text and f'src="{static_url("compare.js")}"' in form.text
    assert 'href="/compare" aria-current="page"' in form.text
    assert "<script>" not in form.text and " style=" not in form.text and "onclick" not in form.text
    missing = web.get("/compare/no-such-comparison/view", headers=HTML)
    assert missing.status_code == 404 and "no comparison with this id" in missing.text
    created = web.post("/compare", files={"image": ("fish.jpg", photo_bytes("001_"), "image/jpeg")})
    if created.status_code == 409:
        pytest.skip(created.json()["detail"])
    assert created.status_code == 202, created.text
    body = created.json()
    view = web.get(body["page_url"], headers=HTML)
    assert view.status_code == 200 and f'data-url="{body["status_url"]}"' in view.text
    html = view.text
    assert "<script>" not in html and " style=" not in html
    for job_id in body["jobs"]:  # one card and one metrics row per job, before any JavaScript runs
        assert html.count(f'data-job-id="{job_id}"') == 2
    assert 'data-kind="original"' in html and 'id="metrics-table"' in html  # a colour photo: ground truth
    # Each job's page links back to its comparison; the shared script comes before the page's own.
    job_page = web.get(f"/jobs/{body['jobs'][0]}/view", headers=HTML).text
    assert f'<a href="/compare/{body["id"]}/view">Part of a comparison' in job_page
    assert job_page.index(static_url("common.js")) < job_page.index(static_url("job.js"))


def test_compare_view_of_a_gray_photo_explains_there_are_no_scores(web) -> None:  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo_bytes("001_"))).convert("L").save(buffer, "PNG")
    created = web.post("/compare", files={"image": ("gray.png", buffer.getvalue(), "image/png")})
    if created.status_code == 409:
        pytest.skip(created.json()["detail"])
    html = web.get(created.json()["page_url"], headers=HTML).text
    assert "No scores for a grayscale upload" in html
    assert 'id="metrics-table"' not in html and 'data-kind="original"' not in html
