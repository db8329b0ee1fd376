"""REST API on the SQLite default and on PostgreSQL (no worker: jobs stay queued here)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from sqlalchemy import func, select

from backend.db import session_scope
from backend.models import Image as ImageRow
from backend.models import Job
from tests.conftest import EXEMPLAR_PAIRS, method_available, photo_bytes

FF = "cnn"  # a feed-forward method whose weights are committed in the repository


def counts() -> tuple[int, int]:
    with session_scope() as s:
        return (
            s.scalar(select(func.count()).select_from(Job)) or 0,
            s.scalar(select(func.count()).select_from(ImageRow)) or 0,
        )


def png(size: tuple[int, int] = (64, 48), mode: str = "L", value: object = 90) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, value).save(buf, format="PNG")  # type: ignore[arg-type]
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _needs_ff() -> None:
    if not method_available(FF):
        pytest.fail(f"the bundled {FF} weights are missing from the checkout")


def submit(client, data: bytes | None = None, method: str = FF, **fields):  # type: ignore[no-untyped-def]
    files = {"image": ("photo.jpg", photo_bytes() if data is None else data, "image/jpeg")}
    return client.post("/colorize", files=files, data={"method": method, **fields})


def test_methods_catalogue(client) -> None:  # type: ignore[no-untyped-def]
    methods = {m["name"]: m for m in client.get("/methods").json()}
    assert {"cnn", "fusion", "gan", "eccv16", "siggraph17", "exemplar"} <= set(methods)
    assert not any(name.startswith("_") for name in methods)
    cnn = methods["cnn"]
    assert cnn["available"] and cnn["unavailable_reason"] is None and not cnn["needs_reference"]
    ex = methods["exemplar"]
    assert ex["needs_reference"] and ex["iterative"]
    iterations = next(p for p in ex["params"] if p["name"] == "iterations")
    assert iterations["type"] == "int" and iterations["maximum"] >= 1000
    for m in methods.values():
        if not m["available"]:
            assert "colorlab weights fetch" in m["unavailable_reason"] or m["unavailable_reason"]


def test_submit_and_follow(client) -> None:  # type: ignore[no-untyped-def]
    r = submit(client)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and len(body["id"]) >= 22
    assert r.headers["location"] == body["status_url"] == f"/jobs/{body['id']}"
    job = client.get(body["status_url"]).json()
    assert job["status"] == "queued" and job["method"] == FF and job["has_ground_truth"]
    assert (job["width"], job["height"]) == (366, 256)
    assert job["urls"]["result"] is None
    r = client.get(body["result_url"])  # there, without a result yet: 409 and when to ask again (404: gone)
    assert r.status_code == 409 and "queued" in r.json()["detail"] and r.headers["retry-after"]
    gray = client.get(job["urls"]["input"])
    assert gray.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(gray.content)).mode == "L"
    original = Image.open(io.BytesIO(client.get(job["urls"]["original"]).content))
    assert original.mode == "RGB" and original.size == (366, 256)


def test_cancel_then_delete_each_as_often_as_a_client_retries(client) -> None:  # type: ignore[no-untyped-def]
    job_id = submit(client).json()["id"]
    for _ in range(2):  # sent again after a lost answer: the same job, still there
        r = client.post(f"/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.get(f"/jobs/{job_id}/input.png").status_code == 200  # kept, with its photo
    # Deleting deletes it with its images; its id is gone afterwards, so a retry finds nothing to delete.
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/input.png"):
        assert client.get(path).status_code == 404
    assert client.delete(f"/jobs/{job_id}").status_code == 404
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 404
    assert counts() == (0, 0)


def test_deleting_a_queued_job_cancels_and_deletes_it_at_once(client) -> None:  # type: ignore[no-untyped-def]
    job_id = submit(client).json()["id"]
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert counts() == (0, 0)


def test_unknown_job(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/jobs/nope", "/jobs/nope/result.png", "/jobs/" + "x" * 200):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["detail"]
    assert client.delete("/jobs/nope").status_code == 404


def test_options_json_and_fields(client) -> None:  # type: ignore[no-untyped-def]
    pairs = sorted(EXEMPLAR_PAIRS.glob("*/ref1.*"))
    ref = pairs[0].read_bytes()
    files = {"image": ("a.png", png(), "image/png"), "reference": ("r.jpg", ref, "image/jpeg")}
    if not method_available("exemplar"):
        pytest.skip("exemplar weights not fetched (colorlab weights fetch vgg16-hed)")
    r = client.post(
        "/colorize",
        files=files,
        data={"method": "exemplar", "options": json.dumps({"iterations": 7}), "size": "64"},
    )
    assert r.status_code == 202, r.text
    params = client.get(f"/jobs/{r.json()['id']}").json()["params"]
    assert params["iterations"] == 7 and params["size"] == 64 and params["optimizer"] == "lbfgs"


@pytest.mark.parametrize(
    ("kwargs", "status", "words", "field"),
    [
        ({"method": "nope"}, 422, "unknown method", None),
        ({"data": b"not an image"}, 415, "the photo: not a supported image", "image"),
        ({"data": b""}, 400, "empty", "image"),
        ({"method": "exemplar"}, 422, "reference", "reference"),
        ({"options": "[1, 2]"}, 422, "JSON object", None),
        ({"options": "{bad json"}, 422, "JSON", None),
        ({"options": '{"vividness": 0.2, "vividness": 0.9}'}, 422, '"vividness" more than once', None),
        (
            {"options": '{"hints": [{"x": 0.1, "x": 0.2, "y": 0.5, "color": "#ff0000"}]}'},
            422,
            '"x" more than once',
            None,
        ),
        ({"bogus": "1"}, 422, "unknown option", None),
        (  # an option of the reference method, without a reference
            {"follow_reference": "1"},
            422,
            "follow_reference is an option of 'unet-bins-reference' (it colours from a reference image",
            None,
        ),
    ],
)
def test_bad_requests_change_nothing(client, kwargs, status, words, field) -> None:  # type: ignore[no-untyped-def]
    """Each refused with its reason and, where it is about one file, that file's form field."""
    before = counts()
    r = submit(client, **kwargs)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert r.json().get("field") == field
    assert counts() == before


def test_a_form_that_cannot_mean_one_thing_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    """Each refused with what is wrong in the words of the request (JSON's true, not Python's True), nothing
    stored."""
    before = counts()
    a, b = ("a.png", png(), "image/png"), ("b.png", png(value=50), "image/png")
    red = ("r.png", png(mode="RGB", value=(200, 40, 30)), "image/png")
    example = next(r for r in client.get("/references").json() if r["source"] == "example")
    cases = [
        ("/colorize", [("image", a), ("image", b)], {}, "`image` came 2 times: send it once (many photos"),
        ("/colorize", [("image", a)], {"vividness": ["0.2", "0.3"]}, "option 'vividness' came twice"),
        (
            "/colorize",
            [("image", a)],
            {"vividness": "0.2", "options": json.dumps({"vividness": 0.9})},
            "both in `options` and as a field",
        ),
        ("/colorize", [("image", a), ("reference", red)], {"reference_id": example["id"]}, "not both"),
        ("/colorize", [("image", a)], {"options": json.dumps({"vividness": True})}, "a number, got true"),
        ("/colorize", [("image", a)], {"options": json.dumps({"vividness": None})}, "a number, got null"),
        ("/compare", [("image", a)], {"methods": " , ,"}, "`methods` names no method"),
        ("/compare", [("image", a), ("image", b)], {}, "`image` came 2 times"),
    ]
    for url, files, data, words in cases:
        r = client.post(url, files=files, data=data)
        assert r.status_code == 422 and words in r.json()["detail"], (url, data, r.text)
    # a form sent url-encoded: the photo field is text, not a file
    r = client.post("/colorize", data={"image": "photo.jpg"})
    assert r.status_code == 422 and r.json()["detail"] == "image: must be a file, sent as multipart/form-data"
    assert counts() == before


def test_out_of_range_option(client) -> None:  # type: ignore[no-untyped-def]
    before = counts()
    files = {
        "image": ("a.png", png(), "image/png"),
        "reference": ("r.png", png(mode="RGB", value=(200, 30, 30)), "image/png"),
    }
    for value, words in (("99999999", "≤"), ("-3", "≥"), ("ten", "integer")):
        r = client.post("/colorize", files=files, data={"method": "exemplar", "iterations": value})
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert counts() == before


def test_missing_fields(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/colorize", data={"method": FF})
    assert r.status_code == 422 and "image" in r.json()["detail"]
    # No method: the default one (unet-bins) is used.
    r = client.post("/colorize", files={"image": ("a.png", png(), "image/png")})
    assert r.status_code == 202, r.text
    assert client.get(f"/jobs/{r.json()['id']}").json()["method"] == "unet-bins"


def test_oversized_upload(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.config import get_settings

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 10_000)
    before = counts()
    r = submit(client, data=photo_bytes())  # ~60 kB
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert counts() == before


def test_too_many_pixels(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.config import get_settings

    monkeypatch.setattr(get_settings(), "max_pixels", 10_000)
    r = submit(client, data=png(size=(200, 100)))
    assert r.status_code == 413 and "pixels" in r.json()["detail"]


def test_gray_reference_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    if not method_available("exemplar"):
        pytest.skip("exemplar weights not fetched")
    files = {"image": ("a.png", png(), "image/png"), "reference": ("r.png", png(), "image/png")}
    r = client.post("/colorize", files=files, data={"method": "exemplar"})
    assert r.status_code == 422 and "no colour" in r.json()["detail"]


def test_references_carry_each_browsers_own_file_names(client) -> None:  # type: ignore[no-untyped-def]
    """Identical uploads share one stored image: another browser's name for the same bytes is never shown
    (it could be "Patient-John-Doe-scan.png"), and an example picked as a reference is listed once, as the
    example."""
    colour = photo_bytes()
    files = {"image": ("Patient-John-Doe-scan.jpg", colour, "image/jpeg")}
    assert client.post("/colorize", files=files, data={"method": FF}).status_code == 202
    mine = [r["label"] for r in client.get("/references").json() if r["source"] == "upload"]
    assert mine == ["Patient-John-Doe-scan.jpg"]
    client.cookies.clear()
    files = {"image": ("holiday.jpg", colour, "image/jpeg")}
    assert client.post("/colorize", files=files, data={"method": FF}).status_code == 202
    mine = [r["label"] for r in client.get("/references").json() if r["source"] == "upload"]
    assert mine == ["holiday.jpg"]
    client.cookies.clear()
    if method_available("unet-bins-reference"):  # the same bytes as a third browser's reference
        files = {"image": ("a.png", png(), "image/png"), "reference": ("sunset.jpg", colour, "image/jpeg")}
        assert client.post("/colorize", files=files).status_code == 202
        mine = [r["label"] for r in client.get("/references").json() if r["source"] == "upload"]
        assert mine == ["sunset.jpg"]
        client.cookies.clear()
        example = next(r for r in client.get("/references").json() if r["source"] == "example")
        data = {"reference_id": example["id"]}
        assert (
            client.post("/colorize", files={"image": ("a.png", png(), "image/png")}, data=data).status_code
            == 202
        )
        assert [r for r in client.get("/references").json() if r["source"] == "upload"] == []
    long_id = "x" * 5000
    r = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"reference_id": long_id}
    )
    assert r.status_code == 404 and len(r.json()["detail"]) < 200


def test_own_references_are_the_most_recently_used_named_as_last_named(client) -> None:  # type: ignore[no-untyped-def]
    """A batch of colour photos must not push a browser's newest upload out of its 24 offered references."""
    many = [
        ("images", (f"c{n:02}.png", png(mode="RGB", value=(200, 10 * n, 40)), "image/png")) for n in range(26)
    ]
    assert client.post("/batches", files=many, data={"method": FF}).status_code == 202
    again = {"image": ("again.png", png(mode="RGB", value=(200, 30, 40)), "image/png")}  # c03's bytes
    assert client.post("/colorize", files=again, data={"method": FF}).status_code == 202
    mine = [r["label"] for r in client.get("/references").json() if r["source"] == "upload"]
    assert len(mine) == 24 and mine[0] == "again.png" and "c03.png" not in mine


def test_reference_for_a_method_without_one(client) -> None:  # type: ignore[no-untyped-def]
    files = {"image": ("a.png", png(), "image/png"), "reference": ("r.png", png(), "image/png")}
    r = client.post("/colorize", files=files, data={"method": FF})
    assert r.status_code == 422 and "no reference" in r.json()["detail"]


def test_references_are_private_to_their_browser(client) -> None:  # type: ignore[no-untyped-def]
    assert submit(client).status_code == 202  # a colour upload: offered back to this browser
    mine = [r for r in client.get("/references").json() if r["source"] == "upload"]
    assert len(mine) == 1
    assert client.get(mine[0]["url"]).headers["content-type"] == "image/png"
    client.cookies.clear()
    assert [r for r in client.get("/references").json() if r["source"] == "upload"] == []
    assert client.get(mine[0]["url"]).status_code == 404
    examples = [r["label"] for r in client.get("/references").json() if r["source"] == "example"]
    assert examples == [f"Example {n}" for n in range(1, len(examples) + 1)] and examples  # not folder names


def test_security_headers(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/methods")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "colorlab_client" in r.headers.get("set-cookie", "")


def test_openapi_documents_the_api(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/openapi.json").json()
    assert {"/colorize", "/jobs/{job_id}", "/jobs/{job_id}/result.png", "/methods"} <= set(spec["paths"])
    assert spec["paths"]["/colorize"]["post"]["responses"]["202"]
    assert client.get("/docs").status_code == 200


def test_openapi_documents_the_refusals(client) -> None:  # type: ignore[no-untyped-def]
    """Every operation on an id or slug documents its 404 (the JSON ``detail``); the study's participant API
    documents the refusals it answers with (no session: 403, not JSON: 415)."""
    spec = client.get("/openapi.json").json()
    error_ref = "#/components/schemas/ErrorOut"
    for path, operations in spec["paths"].items():
        for verb, operation in operations.items():
            codes = operation["responses"]
            if "{" in path:
                schema = codes["404"]["content"]["application/json"]["schema"]
                assert schema["$ref"] == error_ref, (verb, path)
            if path.startswith("/study/") and verb == "post":
                assert {"403", "404", "415", "422"} <= set(codes), (verb, path)
                # rate limits: on new participants and answers only (begin has none)
                assert ("429" in codes) == (not path.endswith("/begin")), (verb, path)


def test_uploads_are_rate_limited_per_client(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.config import get_settings

    monkeypatch.setattr(get_settings(), "colorize_rate", 2)
    assert [submit(client).status_code for _ in range(2)] == [202, 202]
    before = counts()
    r = submit(client)
    assert r.status_code == 429 and "per minute" in r.json()["detail"] and r.headers["retry-after"]
    assert counts() == before


def test_a_comparison_spends_the_photo_budget(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.config import get_settings

    monkeypatch.setattr(get_settings(), "photo_budget", 1)
    send = {"image": ("p.jpg", photo_bytes(), "image/jpeg")}
    assert client.post("/compare", files=send).status_code == 202
    before = counts()
    refused = client.post("/compare", files=send)
    assert refused.status_code == 429 and "per hour" in refused.json()["detail"] and counts() == before


def test_a_refused_upload_gives_its_photo_back_and_more_than_the_budget_is_413(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.config import get_settings

    monkeypatch.setattr(get_settings(), "photo_budget", 2)
    for _ in range(3):  # refused after the photo was read (an unknown reference): nothing spent
        r = submit(client, method="unet-bins-reference", reference_id="0" * 22)
        assert r.status_code == 404, r.text
    assert [submit(client).status_code for _ in range(2)] == [202, 202]
    assert submit(client).status_code == 429  # the hour's two photos: now spent
    three = [("images", (f"{n}.jpg", photo_bytes(), "image/jpeg")) for n in range(3)]
    r = client.post("/batches", files=three, data={"method": FF})
    assert r.status_code == 413 and "smaller parts" in r.json()["detail"]  # waiting would not help
    assert "retry-after" not in r.headers


def test_the_upload_rate_is_counted_before_the_body_is_read() -> None:
    """Over COLORIZE_RATE, an upload is refused from its request line and headers alone: the body (up to
    BATCH_MAX_BYTES) is never read, and the connection is closed rather than drained."""
    import asyncio

    from backend import ratelimit
    from backend.config import get_settings

    ratelimit.reset()
    settings = get_settings()
    reached: list[str] = []
    sent: list[dict[str, object]] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        reached.append(scope["path"])

    async def receive() -> dict[str, object]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    middleware = ratelimit.UploadRateMiddleware(app)
    client = ("203.0.113.9", 9)
    scope = {"type": "http", "method": "POST", "path": "/batches", "headers": [], "client": client}
    for _ in range(settings.colorize_rate):
        asyncio.run(middleware(scope, receive, send))
    assert len(reached) == settings.colorize_rate and not sent
    asyncio.run(middleware(scope, receive, send))
    assert len(reached) == settings.colorize_rate  # the route never ran
    assert sent[0]["status"] == 429 and (b"connection", b"close") in sent[0]["headers"]  # type: ignore[operator]
    asyncio.run(middleware({**scope, "method": "GET", "path": "/jobs/x"}, receive, send))
    assert reached[-1] == "/jobs/x"  # anything else is not counted here
    ratelimit.reset()


def test_compare_queues_every_available_method(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/compare", files={"image": ("p.jpg", photo_bytes(), "image/jpeg")})
    assert r.status_code == 202, r.text
    body = r.json()
    methods = {m["name"]: m for m in client.get("/methods").json()}
    expected = {n for n, m in methods.items() if m["available"] and not m["needs_reference"]}
    group = client.get(body["status_url"]).json()
    assert {j["method"] for j in group["jobs"]} == expected and len(body["jobs"]) == len(expected)
    assert group["has_ground_truth"] and not group["finished"]
    assert all(j["group_id"] == body["id"] and j["status"] == "queued" for j in group["jobs"])
    nothing_yet = client.get(body["results_url"])  # its zip, as a batch's: nothing finished yet
    assert nothing_yet.status_code == 409 and nothing_yet.headers["retry-after"]
    before = counts()
    assert (
        client.post(
            "/compare", files={"image": ("p.jpg", photo_bytes(), "image/jpeg")}, data={"methods": "cnn,nope"}
        ).status_code
        == 422
    )
    assert client.post(
        "/compare", files={"image": ("p.jpg", photo_bytes(), "image/jpeg")}, data={"methods": "exemplar"}
    ).status_code in (409, 422)
    assert counts() == before
    assert client.get("/compare/nope").status_code == 404


def test_the_default_method_is_marked_and_used(client) -> None:  # type: ignore[no-untyped-def]
    methods = client.get("/methods").json()
    assert [m["name"] for m in methods if m["default"]] == ["unet-bins"]
    assert methods[0]["name"] == "unet-bins"
    vivid = next(p for p in methods[0]["params"] if p["name"] == "vividness")
    assert vivid["ends"] == ["safer", "more vivid"] and vivid["default"] == 0.5
    hints = '[{"x": 0.5, "y": 0.25, "color": "#3A7BD5"}]'
    r = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"hints": hints, "vividness": "0.8"}
    )
    assert r.status_code == 202, r.text
    params = client.get(f"/jobs/{r.json()['id']}").json()["params"]
    assert params == {"vividness": 0.8, "hints": [{"x": 0.5, "y": 0.25, "color": "#3a7bd5"}]}


@pytest.mark.parametrize(
    ("hints", "words"),
    [
        ("nope", "JSON list"),
        ('[{"x": 2, "y": 0, "color": "#ffffff"}]', "from 0 to 1"),
        ('[{"x": 0, "y": 0, "color": "blue"}]', "#rrggbb"),
        ('[{"x": 0, "y": 0}]', "color"),
    ],
)
def test_bad_hints_are_refused_and_change_nothing(client, hints, words) -> None:  # type: ignore[no-untyped-def]
    before = counts()
    r = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}, data={"hints": hints})
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    r = (
        client.post(
            "/colorize",
            files={"image": ("a.png", png(), "image/png")},
            data={"options": f'{{"hints": {hints}}}'},
        )
        if hints.startswith("[")
        else r
    )
    assert r.status_code == 422, r.text
    assert counts() == before


def test_rerun_keeps_the_photo_and_changes_the_options(client) -> None:  # type: ignore[no-untyped-def]
    first = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"vividness": "0.2"}
    )
    job_id = first.json()["id"]
    before = counts()
    r = client.post(f"/jobs/{job_id}/rerun", data={"options": '{"vividness": 0.9}'})
    assert r.status_code == 202, r.text
    again = client.get(f"/jobs/{r.json()['id']}").json()
    assert again["method"] == "unet-bins" and again["params"]["vividness"] == 0.9
    assert counts() == (before[0] + 1, before[1])  # a new job, no new image rows
    old = client.get(f"/jobs/{job_id}").json()
    assert again["width"] == old["width"] and again["height"] == old["height"]
    # the re-run's download is named apart from the first one's
    assert (old["download_name"], again["download_name"]) == (
        "a-unet-bins.png",
        f"a-unet-bins-{again['id'][:6]}.png",
    )
    # Another method on the same photo: only the options it takes too are carried over (cnn takes none;
    # the reference form keeps the vividness set on the first job).
    r = client.post(f"/jobs/{job_id}/rerun", data={"method": "cnn"})
    assert r.status_code == 202 and client.get(f"/jobs/{r.json()['id']}").json()["params"] == {}
    if method_available("unet-bins-reference"):
        red = ("r.png", png(mode="RGB", value=(200, 30, 40)), "image/png")
        r = client.post(f"/jobs/{job_id}/rerun", files={"reference": red})
        assert r.status_code == 202, r.text
        with_reference = client.get(f"/jobs/{r.json()['id']}").json()
        assert with_reference["method"] == "unet-bins-reference"
        assert with_reference["params"]["vividness"] == 0.2
    before = counts()
    for data, status, words in (
        ({"options": '{"vividness": 3}'}, 422, "≤"),
        ({"method": "exemplar"}, 422, "reference"),
        ({"method": "nope"}, 422, "unknown method"),
        ({"hints": "[1]"}, 422, "hint 0"),
    ):
        r = client.post(f"/jobs/{job_id}/rerun", data=data)
        assert r.status_code == status and words in r.json()["detail"], (data, r.text)
    r = client.post("/jobs/AAAAAAAAAAAAAAAAAAAAAA/rerun", data={})
    assert r.status_code == 404
    assert counts() == before


def test_rerun_links_back_and_checks_the_hints(client) -> None:  # type: ignore[no-untyped-def]
    first = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}).json()["id"]
    assert client.get(f"/jobs/{first}").json()["rerun_of"] is None
    hints = [{"x": 0.25, "y": 0.5, "color": "#FF0000"}]
    r = client.post(f"/jobs/{first}/rerun", data={"options": json.dumps({"hints": hints, "vividness": 0.7})})
    assert r.status_code == 202, r.text
    again = client.get(f"/jobs/{r.json()['id']}").json()
    assert again["rerun_of"] == first
    assert again["params"]["hints"] == [{"x": 0.25, "y": 0.5, "color": "#ff0000"}]
    assert again["params"]["vividness"] == 0.7
    # A re-run of the re-run links to the job it was made from, not to the first one.
    third = client.post(f"/jobs/{again['id']}/rerun", data={"options": '{"hints": []}'}).json()["id"]
    assert client.get(f"/jobs/{third}").json()["rerun_of"] == again["id"]
    before = counts()
    for bad, words in (
        ([{"x": 1.5, "y": 0.5, "color": "#ff0000"}], "from 0 to 1"),
        ([{"x": 0.5, "y": 0.5, "color": "red"}], "#rrggbb"),
        ([{"x": 0.5, "y": 0.5}], "exactly"),
        ({"x": 0.5}, "JSON list"),
    ):
        r = client.post(f"/jobs/{first}/rerun", data={"options": json.dumps({"hints": bad})})
        assert r.status_code == 422 and words in r.json()["detail"], (bad, r.text)
    assert counts() == before


def test_deleting_the_first_job_keeps_its_reruns(client) -> None:  # type: ignore[no-untyped-def]
    first = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}).json()["id"]
    again = client.post(f"/jobs/{first}/rerun", data={"options": '{"vividness": 0.3}'}).json()["id"]
    with session_scope() as s:  # finished, as the worker would leave it (no worker runs here)
        row = s.get(Job, first)
        assert row is not None
        row.status = "failed"
    assert client.delete(f"/jobs/{first}").status_code == 204
    kept = client.get(f"/jobs/{again}")
    assert kept.status_code == 200 and kept.json()["rerun_of"] is None


def test_a_reference_without_a_method_picks_the_reference_guided_net(client) -> None:  # type: ignore[no-untyped-def]
    ref = png(mode="RGB", value=(40, 160, 60))
    files = {"image": ("a.png", png(), "image/png"), "reference": ("r.png", ref, "image/png")}
    r = client.post("/colorize", files=files)
    assert r.status_code == 202, r.text
    job = client.get(f"/jobs/{r.json()['id']}").json()
    assert job["method"] == "unet-bins-reference" and job["urls"]["reference"]
    r = client.post("/colorize", files={"image": ("a.png", png(), "image/png")})
    assert client.get(f"/jobs/{r.json()['id']}").json()["method"] == "unet-bins"
    r = client.post("/colorize", files={"image": ("a.png", png(), "image/png")},
                    data={"method": "unet-bins-reference"})  # fmt: skip
    assert r.status_code == 422 and "reference" in r.json()["detail"]


def test_follow_reference_is_an_option_of_the_reference_method(client) -> None:  # type: ignore[no-untyped-def]
    ref = png(mode="RGB", value=(200, 40, 30))
    files = {"image": ("a.png", png(), "image/png"), "reference": ("r.png", ref, "image/png")}
    method = next(m for m in client.get("/methods").json() if m["name"] == "unet-bins-reference")
    follow = next(p for p in method["params"] if p["name"] == "follow_reference")
    assert (follow["default"], follow["minimum"], follow["maximum"]) == (0.5, 0, 1)
    assert follow["ends"] == ["loosely", "closely"]
    first = client.post("/colorize", files=files, data={"follow_reference": "0.9"}).json()["id"]
    assert client.get(f"/jobs/{first}").json()["params"]["follow_reference"] == 0.9
    again = client.post(f"/jobs/{first}/rerun", data={"options": '{"vividness": 0.7}'}).json()["id"]
    params = client.get(f"/jobs/{again}").json()["params"]
    assert params["follow_reference"] == 0.9 and params["vividness"] == 0.7  # kept unless given
    r = client.post(f"/jobs/{first}/rerun", data={"options": '{"follow_reference": 1.5}'})
    assert r.status_code == 422 and "follow_reference" in r.json()["detail"] and "≤ 1" in r.json()["detail"]
    r = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"follow_reference": "1"}
    )
    assert r.status_code == 422 and "follow_reference" in r.json()["detail"]  # unet-bins has no such option


def test_rerun_with_another_reference(client) -> None:  # type: ignore[no-untyped-def]
    red, blue = png(mode="RGB", value=(200, 40, 30)), png(mode="RGB", value=(30, 60, 200))
    files = {"image": ("a.png", png(), "image/png"), "reference": ("red.png", red, "image/png")}
    first = client.post("/colorize", files=files, data={"follow_reference": "0.8"}).json()["id"]
    job = client.get(f"/jobs/{first}").json()
    again = client.post(f"/jobs/{first}/rerun", files={"reference": ("blue.png", blue, "image/png")})
    assert again.status_code == 202, again.text
    new = client.get(f"/jobs/{again.json()['id']}").json()
    assert new["method"] == "unet-bins-reference" and new["params"]["follow_reference"] == 0.8  # options kept
    assert new["rerun_of"] == first
    refs = [client.get(j["urls"]["reference"]).content for j in (job, new)]
    assert refs[0] != refs[1]  # the other reference
    example = next(r for r in client.get("/references").json() if r["source"] == "example")
    by_id = client.post(f"/jobs/{first}/rerun", data={"reference_id": example["id"]})
    assert by_id.status_code == 202, by_id.text
    # A job without a reference is coloured from one, by the reference method unless told otherwise.
    plain = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}).json()["id"]
    steered = client.post(f"/jobs/{plain}/rerun", files={"reference": ("red.png", red, "image/png")})
    assert client.get(f"/jobs/{steered.json()['id']}").json()["method"] == "unet-bins-reference"
    before = counts()
    for fields, upload, status, words in (
        ({"method": "unet-bins"}, red, 422, "takes no reference"),
        ({}, png(), 422, "no colour"),
        ({}, b"not an image", 415, "not a supported image"),
    ):
        r = client.post(
            f"/jobs/{plain}/rerun", data=fields, files={"reference": ("r.png", upload, "image/png")}
        )
        assert r.status_code == status and words in r.json()["detail"], r.text
        assert r.json()["field"] == "reference"
    r = client.post(f"/jobs/{first}/rerun", data={"reference_id": "ex-0000000000000000"})
    assert r.status_code == 404 and "no reference image" in r.json()["detail"]
    assert r.json()["field"] == "reference"
    # Another method: each refusal says what is wrong (it used to be "the reference differs" for all).
    for job_id, fields, status, words in (
        (first, {"method": "cnn"}, 422, "takes no reference image and this job has one"),
        (plain, {"method": "exemplar"}, 422, "upload one as `reference`"),
    ):
        r = client.post(f"/jobs/{job_id}/rerun", data=fields)
        assert r.status_code == status and words in r.json()["detail"], r.text
    if not method_available("eccv16"):
        r = client.post(f"/jobs/{first}/rerun", data={"method": "eccv16"})
        assert r.status_code == 409 and "unavailable" in r.json()["detail"], r.text
    assert counts() == before


def test_compare_with_a_picked_reference(client) -> None:  # type: ignore[no-untyped-def]
    example = next(r for r in client.get("/references").json() if r["source"] == "example")
    image = {"image": ("p.jpg", photo_bytes(), "image/jpeg")}
    r = client.post(
        "/compare",
        files=image,
        data={"reference_id": example["id"], "methods": "unet-bins,unet-bins-reference"},
    )
    assert r.status_code == 202, r.text
    jobs = {j["method"]: j for j in client.get(r.json()["status_url"]).json()["jobs"]}
    assert set(jobs) == {"unet-bins", "unet-bins-reference"}
    assert jobs["unet-bins-reference"]["urls"]["reference"] and not jobs["unet-bins"]["urls"].get("reference")
    before = counts()
    r = client.post("/compare", files=image, data={"reference_id": "ex-0000000000000000"})
    assert r.status_code == 404 and "no reference image" in r.json()["detail"]
    gray = {"reference": ("g.png", png(), "image/png")}
    r = client.post("/compare", files={**image, **gray})
    assert r.status_code == 422 and "no colour" in r.json()["detail"]
    assert counts() == before


def test_head_answers_as_get_without_the_body(client) -> None:  # type: ignore[no-untyped-def]
    job = client.get(submit(client).json()["status_url"]).json()
    for path in (job["urls"]["input"], job["urls"]["original"], "/methods", "/"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        for name in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    missing = client.head(f"/jobs/{job['id']}/result.png")
    assert missing.status_code == 409 and missing.content == b""  # no result yet
    assert client.head("/colorize").status_code == 405  # POST only


def test_head_of_a_download_made_on_the_fly_does_not_make_it(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A HEAD of a zip or of a JPEG made from the stored PNG answers with the headers alone: neither the
    zip (every result read, maybe re-encoded) nor the JPEG is made to be thrown away."""
    from backend.routes import api, batches
    from tests.backend.test_batches_names import run_all_queued

    files = [("images", (f"{n}.jpg", photo_bytes(), "image/jpeg")) for n in range(2)]
    batch = client.post("/batches", files=files, data={"method": FF}).json()
    job_id = client.get(batch["status_url"]).json()["items"][0]["job_id"]
    run_all_queued()

    def not_made(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("made for a HEAD")

    monkeypatch.setattr(batches, "_stored_data", not_made)
    monkeypatch.setattr(api, "png_to_jpeg", not_made)
    zips = (batch["results_url"], f"{batch['results_url']}?format=jpg", f"/results.zip?batch={batch['id']}")
    for path in zips:
        head = client.head(path)
        assert head.status_code == 200 and head.headers["content-type"] == "application/zip", path
        assert head.content == b"" and "colorlab-" in head.headers["content-disposition"]
    head = client.head(f"/jobs/{job_id}/result.png?format=jpg")
    assert head.status_code == 200 and head.headers["content-type"] == "image/jpeg" and head.headers["etag"]
    assert head.headers["content-disposition"].startswith("inline")  # the GET's: shown, not saved
    saved = client.head(f"/jobs/{job_id}/result.png?format=jpg&download=true")
    assert saved.headers["content-disposition"].startswith("attachment")


def test_a_refused_method_names_every_method_the_path_takes(client) -> None:  # type: ignore[no-untyped-def]
    job_id = submit(client).json()["id"]
    r = client.put(f"/jobs/{job_id}")  # GET and DELETE are two routes; Starlette named only the first
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, DELETE"
    assert r.json()["detail"] == "PUT is not allowed here; allowed: GET, HEAD, DELETE"
    options = client.options(f"/jobs/{job_id}")
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, DELETE"
    page = client.get("/colorize", headers={"accept": "text/html"})  # a browser: a page, not JSON
    assert page.status_code == 405 and page.headers["allow"] == "POST" and "allowed: POST" in page.text
    assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"  # nothing changed
