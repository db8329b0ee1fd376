"""Batches, result names, JPEG downloads, deletion, queue position and estimates (REST, SQLite and
PostgreSQL). Jobs are run in-process by the worker's Runner where a result is needed; the Celery wiring and
real worker processes are covered in tests/e2e."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import datetime

import pytest
from PIL import Image
from sqlalchemy import func, select

from backend.config import get_settings
from backend.db import session_scope
from backend.models import Image as ImageRow
from backend.models import Job
from tests.conftest import EXEMPLAR_PAIRS, apply_settings, keep_for_a_study, method_available, photo_bytes
from worker.runner import Runner


@pytest.fixture(autouse=True)
def _needs_cnn() -> None:
    if not method_available("cnn"):
        pytest.fail("the bundled cnn weights are missing from the checkout")


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 100).save(buf, format="JPEG")
    return buf.getvalue()


def run_all_queued() -> None:
    runner = Runner(get_settings())
    with session_scope() as s:
        ids = s.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.created_at)).all()
    for job_id in ids:
        runner.run(job_id)


def test_single_upload_keeps_its_name_and_downloads_as_jpeg(client) -> None:  # type: ignore[no-untyped-def]
    files = {"image": ("../../etc/Holiday 1962.JPG", photo_bytes(), "image/jpeg")}
    r = client.post("/colorize", files=files, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    job = client.get(f"/jobs/{job_id}").json()
    assert job["source_name"] == "Holiday 1962.JPG"  # directories dropped: never a path
    assert job["download_name"] == "Holiday-1962-cnn.png"
    run_all_queued()
    png = client.get(f"/jobs/{job_id}/result.png?download=true")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert 'attachment; filename="Holiday-1962-cnn.png"' in png.headers["content-disposition"]
    jpg = client.get(f"/jobs/{job_id}/result.png?format=jpg&quality=90")
    assert jpg.status_code == 200 and jpg.headers["content-type"] == "image/jpeg"
    assert 'filename="Holiday-1962-cnn.jpg"' in jpg.headers["content-disposition"]
    decoded = Image.open(io.BytesIO(jpg.content))
    assert decoded.format == "JPEG" and decoded.size == Image.open(io.BytesIO(png.content)).size
    assert len(jpg.content) < len(png.content)
    for bad in ("format=gif", "format=jpg&quality=0", "format=jpg&quality=101"):
        r = client.get(f"/jobs/{job_id}/result.png?{bad}")
        assert r.status_code == 422 and r.json()["detail"]


def test_a_browsers_escaped_quotes_are_quotes_again() -> None:
    """Browsers send `"` in a multipart file name as %22 (CR, LF as %0D, %0A): shown as the file is named."""
    from backend.stored_images import display_name, distinct_names

    assert display_name("a,b %22quoted%22.jpg") == 'a,b "quoted".jpg'
    assert display_name("two%0Alines.jpg") == "two lines.jpg"
    assert distinct_names(["x/%22a%22.jpg", "y/%22a%22.jpg"]) == ['x/"a".jpg', 'y/"a".jpg']


def test_unicode_name_gets_an_rfc6266_header(client) -> None:  # type: ignore[no-untyped-def]
    files = {"image": ("Großmutter 1930.jpg", photo_bytes(), "image/jpeg")}
    job_id = client.post("/colorize", files=files, data={"method": "cnn"}).json()["id"]
    run_all_queued()
    r = client.get(f"/jobs/{job_id}/result.png")
    assert "filename*=UTF-8''Gro%C3%9Fmutter-1930-cnn.png" in r.headers["content-disposition"]


def test_delete_finished_job_keeps_images_other_jobs_use(client) -> None:  # type: ignore[no-untyped-def]
    data = photo_bytes()
    a = client.post("/colorize", files={"image": ("a.jpg", data)}, data={"method": "cnn"}).json()["id"]
    b = client.post("/colorize", files={"image": ("b.jpg", data)}, data={"method": "cnn"}).json()["id"]
    run_all_queued()
    with session_scope() as s:
        input_id = s.get(Job, a).input_image_id
        assert s.get(Job, b).input_image_id == input_id  # identical uploads share one stored image
    assert client.delete(f"/jobs/{a}").status_code == 204
    assert client.get(f"/jobs/{a}").status_code == 404
    assert client.get(f"/jobs/{b}/input.png").status_code == 200  # still there for b
    assert client.delete(f"/jobs/{b}").status_code == 204
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(ImageRow)) == 0
        assert s.scalar(select(func.count()).select_from(Job)) == 0
    assert client.delete(f"/jobs/{b}").status_code == 404


def test_batch_of_files_and_a_zip_with_a_bad_photo(client) -> None:  # type: ignore[no-untyped-def]
    files = [
        ("images", ("holiday-1962.jpg", photo_bytes("001_"), "image/jpeg")),
        ("images", ("notes.txt", b"not an image at all", "text/plain")),
        ("images", ("holiday-1962.jpg", photo_bytes("002_"), "image/jpeg")),  # same name twice
    ]
    r = client.post("/batches", files=files, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["accepted"] == 2
    assert [x["name"] for x in created["rejected"]] == ["notes.txt"]
    batch_id = created["id"]
    batch = client.get(f"/batches/{batch_id}").json()
    assert batch["total"] == 2 and batch["progress"] == 0 and not batch["finished"]
    assert {i["status"] for i in batch["items"]} == {"queued"}
    empty = client.get(f"/batches/{batch_id}/results.zip")  # nothing finished yet: ask again later
    assert empty.status_code == 409 and empty.headers["retry-after"]
    run_all_queued()
    batch = client.get(f"/batches/{batch_id}").json()
    assert batch["finished"] and batch["progress"] == 1.0 and batch["counts"] == {"done": 2}
    r = client.get(f"/batches/{batch_id}/results.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.namelist() == ["holiday-1962-cnn.png", "holiday-1962-cnn-2.png"]
    assert Image.open(archive.open("holiday-1962-cnn.png")).format == "PNG"
    r = client.get(f"/batches/{batch_id}/results.zip?format=jpg")
    assert f'filename="colorlab-batch-{batch_id[:8]}-jpg.zip"' in r.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert names == ["holiday-1962-cnn.jpg", "holiday-1962-cnn-2.jpg"]
    assert (
        f'filename="colorlab-batch-{batch_id[:8]}.zip"'
        in client.get(f"/batches/{batch_id}/results.zip").headers["content-disposition"]
    )
    # a zip made while a photo still runs holds the finished ones, and its name says so
    from sqlalchemy import update

    with session_scope() as s:
        s.execute(update(Job).where(Job.id == batch["items"][1]["job_id"]).values(status="running"))
    r = client.get(f"/batches/{batch_id}/results.zip")
    assert f'filename="colorlab-batch-{batch_id[:8]}-1-done.zip"' in r.headers["content-disposition"]
    assert zipfile.ZipFile(io.BytesIO(r.content)).namelist() == ["holiday-1962-cnn.png"]

    # The same as one zip (folders inside are fine; hidden files and macOS metadata are skipped).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("family/grandpa.jpg", photo_bytes("003_"))
        z.writestr("family/.DS_Store", b"junk")
        z.writestr("family/.thumbnails/grandpa.jpg", photo_bytes("003_"))  # a hidden folder's copy
        z.writestr("__MACOSX/family/._grandpa.jpg", b"junk")
        z.writestr("family/broken.png", b"\x89PNG\r\n\x1a\n broken")
    r = client.post("/batches", files={"images": ("photos.zip", buf.getvalue())}, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1 and [x["name"] for x in r.json()["rejected"]] == ["broken.png"]
    items = client.get(r.json()["status_url"]).json()["items"]
    assert [i["name"] for i in items] == ["grandpa.jpg"]


def test_photos_of_the_same_name_keep_their_folders(client) -> None:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("trip/2019/IMG_0001.jpg", photo_bytes("001_"))
        z.writestr("trip/2020/IMG_0001.jpg", photo_bytes("002_"))
        z.writestr("trip/2020/beach.jpg", photo_bytes("003_"))
    files = [
        ("images", ("album.zip", buf.getvalue(), "application/zip")),
        ("images", ("scans/IMG_0001.jpg", photo_bytes("005_"), "image/jpeg")),  # a folder upload's path
        ("images", ("../../etc/notes.txt", b"text", "text/plain")),
    ]
    r = client.post("/batches", files=files, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    assert [x["name"] for x in r.json()["rejected"]] == ["notes.txt"]  # never a path out of the folder
    names = [i["name"] for i in client.get(r.json()["status_url"]).json()["items"]]
    assert names == ["2019/IMG_0001.jpg", "2020/IMG_0001.jpg", "beach.jpg", "scans/IMG_0001.jpg"]
    run_all_queued()
    zipped = zipfile.ZipFile(io.BytesIO(client.get(r.json()["results_url"]).content)).namelist()
    assert zipped == [
        "2019-IMG_0001-cnn.png",
        "2020-IMG_0001-cnn.png",
        "beach-cnn.png",
        "scans-IMG_0001-cnn.png",
    ]


def test_batch_refusals_change_nothing(client) -> None:  # type: ignore[no-untyped-def]
    def count() -> int:
        with session_scope() as s:
            return s.scalar(select(func.count()).select_from(Job)) or 0

    ok = ("images", ("a.jpg", jpeg(), "image/jpeg"))
    cases = [
        ({"method": "nope"}, [ok], 422),
        ({"method": "cnn", "iterations": "3"}, [ok], 422),  # cnn has no such option
        ({"method": "cnn"}, [("images", ("a.txt", b"text", "text/plain"))], 422),  # nothing usable
        ({"method": "exemplar"}, [ok], 422),  # needs a reference
    ]
    for data, files, code in cases:
        r = client.post("/batches", files=files, data=data)
        assert r.status_code == code, (data, r.text)
        assert r.json()["detail"]
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    for name, content, words in (  # a bad zip says so (it used to read "not a supported image")
        ("a.zip", b"PK\x03\x04broken", "a.zip: the zip file is damaged or not a zip"),
        ("b.zip", b"just text", "b.zip: the zip file is damaged or not a zip"),
        ("c.zip", empty.getvalue(), "c.zip: the zip holds no photos"),
    ):
        r = client.post(
            "/batches", files=[("images", (name, content, "application/zip"))], data={"method": "cnn"}
        )
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert client.post("/batches", data={"method": "cnn"}).status_code == 422
    assert count() == 0
    assert client.get("/batches/nope").status_code == 404
    assert client.get("/batches/" + "x" * 100).status_code == 404


def test_batch_limits_and_photo_budget(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from backend.main import create_app
    from tests.conftest import migrate

    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var", BATCH_MAX_PHOTOS=3, PHOTO_BUDGET=5)
    migrate()
    with TestClient(create_app()) as client:
        many = [("images", (f"{n}.jpg", jpeg(), "image/jpeg")) for n in range(4)]
        r = client.post("/batches", files=many, data={"method": "cnn"})
        assert r.status_code == 413 and "at most 3" in r.json()["detail"]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n in range(4):
                z.writestr(f"{n}.jpg", jpeg())
        r = client.post("/batches", files={"images": ("x.zip", buf.getvalue())}, data={"method": "cnn"})
        assert r.status_code == 413 and "the zip holds 4 files; a batch takes at most 3 photos" in r.text
        three = many[:3]
        assert client.post("/batches", files=three, data={"method": "cnn"}).status_code == 202
        # 3 of 5 photos spent: 2 more singles pass, the next photo is over the hourly budget.
        for _ in range(2):
            assert (
                client.post("/colorize", files={"image": jpeg()}, data={"method": "cnn"}).status_code == 202
            )
        r = client.post("/colorize", files={"image": jpeg()}, data={"method": "cnn"})
        assert r.status_code == 429 and "per hour" in r.json()["detail"]


def test_queue_position_and_estimates(client) -> None:  # type: ignore[no-untyped-def]
    ids = [
        client.post("/colorize", files={"image": (f"{n}.jpg", jpeg())}, data={"method": "cnn"}).json()["id"]
        for n in range(3)
    ]
    queue = [client.get(f"/jobs/{i}").json()["queue"] for i in ids]
    assert [q["ahead"] for q in queue] == [0, 1, 2]
    assert all(q["lane"] == "fast" for q in queue)
    assert queue[0]["estimated_start"] <= queue[1]["estimated_start"] <= queue[2]["estimated_start"]
    run_all_queued()
    assert client.get(f"/jobs/{ids[0]}").json()["queue"] is None  # finished: no place in line
    if method_available("exemplar"):
        folder = EXEMPLAR_PAIRS / "example"
        target, ref = next(folder.glob("in1.*")), next(folder.glob("ref1.*"))
        files = {"image": (target.name, target.read_bytes()), "reference": (ref.name, ref.read_bytes())}
        r = client.post("/colorize", files=files, data={"method": "exemplar", "iterations": "100"})
        job = client.get(f"/jobs/{r.json()['id']}").json()
        assert job["queue"]["lane"] == "iterative" and job["queue"]["ahead"] == 0  # cnn jobs are not ahead
        assert job["iterations"] == {"run": 0, "planned": 100}
        # The expected time scales with the iterations asked for.
        methods = {m["name"]: m for m in client.get("/methods").json()}
        presets = {p["name"]: p for p in methods["exemplar"]["presets"]}
        assert list(presets) == ["quick", "balanced", "paper"]  # quickest first
        assert [name for name, p in presets.items() if p["default"]] == ["balanced"]
        assert presets["quick"]["expected_seconds"] < presets["balanced"]["expected_seconds"]
        assert presets["balanced"]["expected_seconds"] < presets["paper"]["expected_seconds"]
        assert presets["paper"]["options"]["iterations"] == 1000
        limit = get_settings().job_time_limit
        assert methods["exemplar"]["time_limit_seconds"] == limit
        assert all(p["over_time_limit"] == (p["expected_seconds"] > limit) for p in presets.values())


def test_presets_longer_than_the_time_limit_say_so() -> None:
    """The paper's 1000 iterations (about 10 min here) on a server that stops jobs after 2 min: the preset
    says it will not run whole (the job stops at the limit, keeping its colours)."""
    from backend import method_views

    settings = get_settings().model_copy(update={"job_time_limit": 120})
    exemplar = next(m for m in method_views.methods_out(settings) if m["name"] == "exemplar")
    assert exemplar["time_limit_seconds"] == 120
    assert {p["name"]: p["over_time_limit"] for p in exemplar["presets"]} == {
        "quick": False,
        "balanced": False,
        "paper": True,
    }


def test_delete_a_batch_or_a_comparison_and_zip_several(client) -> None:  # type: ignore[no-untyped-def]
    def image_count() -> int:
        with session_scope() as s:
            return s.scalar(select(func.count()).select_from(ImageRow)) or 0

    kept = photo_bytes("005_")
    single = client.post("/colorize", files={"image": ("keep.jpg", kept)}, data={"method": "cnn"}).json()[
        "id"
    ]
    run_all_queued()
    before = image_count()
    files = [("images", (f"p{i}.jpg", photo_bytes(f"00{i + 1}_"), "image/jpeg")) for i in range(3)]
    batch_id = client.post("/batches", files=files, data={"method": "cnn"}).json()["id"]
    # the comparison shares its photo with the single job: that image must stay
    r = client.post("/compare", files={"image": ("keep.jpg", kept)}, data={"methods": "cnn,gan"})
    assert r.status_code == 202, r.text
    group = r.json()["id"]
    run_all_queued()
    waiting = client.post("/batches", files=files[:2], data={"method": "cnn"}).json()["id"]  # left queued

    # one zip: a batch, a comparison and a job; unfinished jobs are left out
    r = client.get(f"/results.zip?batch={batch_id}&comparison={group}&id={single}&batch={waiting}")
    assert r.status_code == 200, r.text
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert names[0] == "keep-cnn.png" and len(names) == 6
    assert {"p0-cnn.png", "p1-cnn.png", "p2-cnn.png", "keep-gan.png"} <= set(names)
    missing = client.get("/results.zip")
    assert missing.status_code == 422 and "batch" in missing.json()["detail"]
    unknown = client.get(f"/results.zip?batch={single}&id=nope")  # ids that name nothing: not "not finished"
    assert unknown.status_code == 404 and "none of these" in unknown.json()["detail"]

    # deleting a batch (finished, or still queued: cancelled first) or a comparison takes its images along
    for url in (f"/batches/{batch_id}", f"/batches/{waiting}", f"/compare/{group}"):
        with session_scope() as s:
            column = Job.group_id if "compare" in url else Job.batch_id
            job_ids = s.scalars(select(Job.id).where(column == url.rsplit("/", 1)[1])).all()
        assert client.delete(url).status_code == 204, url
        assert client.get(url).status_code == 404 and client.delete(url).status_code == 404
        assert all(client.get(f"/jobs/{j}").status_code == 404 for j in job_ids)
    assert image_count() == before
    assert client.get(f"/jobs/{single}/input.png").status_code == 200
    assert client.get(f"/jobs/{single}/result.png").status_code == 200
    for bad in ("/batches/..%2Fx", "/batches/" + "0" * 32, "/compare/nope", "/compare/" + "0" * 32):
        r = client.delete(bad)
        assert r.status_code == 404 and r.json()["detail"], bad


def test_stopping_a_batch_or_a_comparison_keeps_what_has_finished(client) -> None:  # type: ignore[no-untyped-def]
    files = [("images", (f"p{i}.jpg", photo_bytes(f"00{i + 1}_"), "image/jpeg")) for i in range(2)]
    batch_id = client.post("/batches", files=files, data={"method": "cnn"}).json()["id"]
    first, _ = (item["job_id"] for item in client.get(f"/batches/{batch_id}").json()["items"])
    Runner(get_settings().model_copy(update={"batch_max": 1})).run(first)  # one done, one still queued
    for _ in range(2):  # sent again after a lost answer: the same batch
        r = client.post(f"/batches/{batch_id}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["counts"] == {"done": 1, "cancelled": 1} and r.json()["finished"]
    assert client.get(f"/jobs/{first}/result.png").status_code == 200
    zipped = zipfile.ZipFile(io.BytesIO(client.get(f"/batches/{batch_id}/results.zip").content))
    assert zipped.namelist() == ["p0-cnn.png"]

    r = client.post("/compare", files={"image": ("c.jpg", photo_bytes())}, data={"methods": "cnn,gan"})
    group = r.json()["id"]
    stopped = client.post(f"/compare/{group}/cancel")
    assert stopped.status_code == 200, stopped.text
    assert {job["status"] for job in stopped.json()["jobs"]} == {"cancelled"}
    assert client.post("/compare/nope/cancel").status_code == 404


def test_a_batch_with_a_study_stimulus_is_kept_whole(client) -> None:  # type: ignore[no-untyped-def]
    files = [("images", (f"p{i}.jpg", photo_bytes(f"00{i + 1}_"), "image/jpeg")) for i in range(2)]
    batch_id = client.post("/batches", files=files, data={"method": "cnn"}).json()["id"]
    with session_scope() as s:
        job_id = s.scalars(select(Job.id).where(Job.batch_id == batch_id)).first()
    assert job_id is not None
    keep_for_a_study(job_id)
    for r in (client.delete(f"/batches/{batch_id}"), client.post(f"/batches/{batch_id}/cancel")):
        assert r.status_code == 409 and "study" in r.json()["detail"]
    batch = client.get(f"/batches/{batch_id}").json()
    assert batch["total"] == 2 and {i["status"] for i in batch["items"]} == {"queued"}  # nothing cancelled


def test_a_job_deleted_meanwhile_is_404_not_a_study_stimulus(client) -> None:  # type: ignore[no-untyped-def]
    """Two DELETEs of one finished job at once: the second finds it gone (it used to answer 409, "part of a
    user study")."""
    from backend import job_lifecycle as lifecycle
    from backend.errors import UserError

    job_id = client.post(
        "/colorize", files={"image": ("a.jpg", photo_bytes())}, data={"method": "cnn"}
    ).json()["id"]
    run_all_queued()
    with session_scope() as first:
        assert first.get(Job, job_id) is not None  # the route has looked the job up...
        with session_scope() as second:  # ...when another request deletes it
            assert lifecycle.delete_finished(second, job_id) is not None
        with pytest.raises(UserError) as refused:
            lifecycle.delete_finished(first, job_id)
    assert refused.value.status_code == 404
    assert client.delete(f"/jobs/{job_id}").status_code == 404


def test_a_batch_s_photos_are_held_to_the_limits_of_a_single_upload(client) -> None:  # type: ignore[no-untyped-def]
    from tests.reliability.redteam import many_scan_jpeg, png_bomb

    # Batch photos were decoded with the pixel limit only: a 40 KB PNG of 40 MP and a JPEG of 5,000 scans
    # (seconds of decoding each) went through, where POST /colorize refuses both.
    files = [
        ("images", ("good.jpg", photo_bytes("001_"), "image/jpeg")),
        ("images", ("bomb.png", png_bomb(), "image/png")),
        ("images", ("scans.jpg", many_scan_jpeg(), "image/jpeg")),
    ]
    r = client.post("/batches", files=files, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    rejected = {x["name"]: x["detail"] for x in r.json()["rejected"]}
    assert r.json()["accepted"] == 1 and sorted(rejected) == ["bomb.png", "scans.jpg"]
    assert "pixels from a" in rejected["bomb.png"] and "scans" in rejected["scans.jpg"]
    for data, words in ((png_bomb(), "pixels from a"), (many_scan_jpeg(), "scans")):
        single = client.post("/colorize", files={"image": ("x", data)}, data={"method": "cnn"})
        assert single.status_code == 413 and words in single.json()["detail"]


def test_a_batch_photo_is_held_as_its_file_and_facts_and_stored_whole(database: str) -> None:
    from backend.images import decode, renditions
    from backend.stored_images import Upload, store_image

    data = photo_bytes("005_")
    decoded = decode(data, max_pixels=10**8)
    light = Upload(data=data, decoded=decoded.facts, filename="a.jpg")  # as a batch holds it: no pixels
    with session_scope() as s:
        image = store_image(s, light)  # its renditions made from the file, as they are from the pixels
        s.commit()
        row = (image.width, image.height, image.is_color, image.format, image.gray_png, image.color_png)
    made = renditions(decoded)
    assert row == (decoded.width, decoded.height, decoded.is_color, "JPEG", made.gray_png, made.color_png)


def test_a_feed_forward_estimate_grows_with_the_photo_s_size(client) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    def post(name: str, side: int) -> str:
        files = {"image": (name, jpeg((side, side)))}
        return str(client.post("/colorize", files=files, data={"method": "cnn"}).json()["id"])

    small = [post(f"s{n}.jpg", 500) for n in range(2)]
    run_all_queued()
    with session_scope() as s:  # as if each had taken 0.5 s (0.25 MP: below the 1 MP of fixed cost)
        s.execute(update(Job).where(Job.id.in_(small)).values(run_seconds=0.5))
        s.commit()
    big, after = post("scan.jpg", 2000), post("s.jpg", 500)
    asked = time.monotonic()
    big_queue = client.get(f"/jobs/{big}").json()["queue"]
    small_queue = client.get(f"/jobs/{after}").json()["queue"]
    between = time.monotonic() - asked  # each estimate counts from its own "now"
    assert big_queue["estimated_run_seconds"] == 2.0  # 4 MP: four times the 1 MP a small photo costs
    assert small_queue["estimated_run_seconds"] == 0.5 and small_queue["ahead"] == 1
    waited = datetime.fromisoformat(small_queue["estimated_start"]) - datetime.fromisoformat(
        big_queue["estimated_start"]
    )
    expected = 2.0 / get_settings().fast_concurrency
    assert expected - 0.5 <= waited.total_seconds() <= expected + between + 0.5


def test_junk_is_a_hidden_file_or_folder_or_macos_metadata() -> None:
    from backend.stored_images import is_junk

    kept = ["a.jpg", "./box/a.jpg", "box\\b.jpg"]
    junk = ["x/.thumbnails/a.jpg", "__MACOSX/box/._a.jpg", "box/._a.jpg", ".DS_Store", "box\\.cache\\b.jpg"]
    paths = kept + junk
    assert [p for p in paths if not is_junk(p)] == kept
