"""The published contract (GET /openapi.json) against what the API really answers: every status, media type
and header a client relies on is documented where it comes (SQLite default; no worker)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from backend.config import get_settings
from backend.db import session_scope
from backend.models import Job, JobStatus
from tests.conftest import apply_settings, migrate

FF = "cnn"  # weights committed in the repository


def png(mode: str = "L", value: object = 90) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (64, 48), value).save(buf, format="PNG")  # type: ignore[arg-type]
    return buf.getvalue()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var")
    migrate()
    from backend.main import create_app

    with TestClient(create_app()) as client:
        yield client


def operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The OpenAPI operation that serves ``method path`` (path templates matched segment by segment)."""
    for template, ops in spec["paths"].items():
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        if re.fullmatch(pattern, path.split("?")[0]) and method.lower() in ops:
            return dict(ops[method.lower()])
    raise AssertionError(f"{method} {path} is not in the OpenAPI")


def documented(spec: dict[str, Any], r: Any, method: str | None = None) -> dict[str, Any]:
    """Assert that the answer's status, media type and headers are the ones its operation documents."""
    method = method or r.request.method
    if r.status_code == 405:  # documented on the operations the path has: the first one `Allow` names
        method = r.headers["allow"].split(",")[0]
    path = r.request.url.path
    responses = operation(spec, method, path)["responses"]
    entry = responses.get(str(r.status_code))
    assert entry is not None, f"{method} {path}: {r.status_code} not documented ({r.text[:200]})"
    media = r.headers.get("content-type", "").split(";")[0]
    if r.status_code not in (204, 304):
        assert media in entry.get("content", {}), f"{method} {path} {r.status_code}: {media} not documented"
    for header in ("etag", "location", "allow", "retry-after", "content-disposition"):
        if header in r.headers:
            names = {h.lower() for h in entry.get("headers", {})}
            assert header in names, f"{method} {path} {r.status_code}: header {header} not documented"
    if r.status_code >= 400:
        body = r.json()
        assert set(body) <= {"detail", "field"} and isinstance(body["detail"], str) and body["detail"]
        assert body.get("field") in (None, "image", "reference")  # ErrorOut
    return entry


def a_finished_job(api: TestClient) -> str:
    """A job made done by hand (no worker here): its result is its own gray PNG."""
    r = api.post("/colorize", files={"image": ("photo.png", png(), "image/png")}, data={"method": FF})
    assert r.status_code == 202, r.text
    job_id = str(r.json()["id"])
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.result_image_id, job.status = job.input_image_id, JobStatus.done
    return job_id


def test_file_routes_document_their_media_types_and_no_json(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    job_id = a_finished_job(api)
    for path, types in (
        (f"/jobs/{job_id}/result.png", {"image/png", "image/jpeg"}),
        (f"/jobs/{job_id}/input.png", {"image/png"}),
        (f"/jobs/{job_id}/original.png", {"image/png"}),
        (f"/jobs/{job_id}/thumb.jpg", {"image/jpeg"}),
        (f"/jobs/{job_id}/preview.png", {"image/png"}),
        ("/references/x.png", {"image/png"}),
        (f"/results.zip?id={job_id}", {"application/zip"}),
        ("/batches/x/results.zip", {"application/zip"}),
    ):
        assert set(operation(spec, "GET", path)["responses"]["200"]["content"]) == types, path
    for path in (
        f"/jobs/{job_id}/result.png",
        f"/jobs/{job_id}/result.png?format=jpg&quality=80&download=true",
        f"/jobs/{job_id}/thumb.jpg?of=input",
        f"/results.zip?id={job_id}&format=jpg",
    ):
        r = api.get(path)
        assert r.status_code == 200, r.text
        documented(spec, r)


def test_revalidation_answers_a_documented_304(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    job_id = a_finished_job(api)
    for path in (f"/jobs/{job_id}/result.png?format=jpg", f"/jobs/{job_id}/input.png"):
        first = api.get(path)
        etag = first.headers["etag"]
        # the ETag itself, a list holding it, its weak form, and "*" (any current representation)
        for given in (etag, f'"other", {etag}', f"W/{etag}", "*"):
            r = api.get(path, headers={"If-None-Match": given})
            assert r.status_code == 304 and not r.content, (path, given)
            assert r.headers["etag"] == etag and "immutable" in r.headers["cache-control"]
            documented(spec, r)
        assert api.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def over_the_upload_rate(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Two uploads with COLORIZE_RATE=1: the second is refused (429)."""
    monkeypatch.setenv("COLORIZE_RATE", "1")
    get_settings.cache_clear()
    gray = {"image": ("a.png", png(), "image/png")}
    api.post("/colorize", files=gray, data={"method": FF})
    return [api.post("/colorize", files=gray, data={"method": FF})]


def test_every_refusal_is_documented_with_its_headers(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = api.get("/openapi.json").json()
    job_id = a_finished_job(api)
    gray = {"image": ("a.png", png(), "image/png")}
    for r in (
        api.get("/jobs/nope"),
        api.get(f"/jobs/{job_id}/reference.png"),
        api.get(f"/jobs/{job_id}/result.png?quality=0"),
        api.get(f"/jobs/{job_id}/thumb.jpg?of=x"),
        api.get("/results.zip"),
        api.get("/batches/nope/results.zip?format=gif"),
        api.delete("/compare/nope"),
        api.put(f"/jobs/{job_id}"),
        api.delete("/methods"),
        api.post("/references"),
        api.post("/colorize", files={"image": ("a.png", b"", "image/png")}),  # 400
        api.post("/colorize", files={"image": ("a.txt", b"hello", "text/plain")}),  # 415
        api.post("/colorize", files=gray, data={"method": "eccv16"}),  # 409 (weights never committed)
        api.post("/colorize", files=gray, data={"options": '{"vividness": NaN}'}),  # 422
        api.post("/colorize", files=gray, data={"reference_id": "nope"}),  # 404
        *over_the_upload_rate(api, monkeypatch),  # 429
        api.get("/study/nope/api/state"),  # the participant API: 404 no such study
        api.post("/study/nope/api/start", json={}),  # 404
        api.post("/study/nope/api/answer", content=b"{}", headers={"Content-Type": "text/plain"}),  # 415
        api.post("/study/nope/api/begin", content=b"[", headers={"Content-Type": "application/json"}),  # 422
        api.get("/study/nope/images/x.jpg"),  # 404
    ):
        assert r.status_code >= 400, r.text
        entry = documented(spec, r)
        if r.status_code == 405:
            assert r.headers["allow"] and "Allow" in entry["headers"]
        if r.status_code == 429:
            assert r.headers["retry-after"] and "Retry-After" in entry["headers"]
    # Every operation may meet a database outage: 503 with Retry-After (tests/reliability answers it live).
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path != "/healthz":
                assert "Retry-After" in op["responses"]["503"]["headers"], (method, path)


def test_created_answers_document_location_and_types(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    r = job = api.post("/colorize", files={"image": ("a.png", png(), "image/png")}, data={"method": FF})
    assert r.status_code == 202 and r.headers["location"] == r.json()["status_url"]
    documented(spec, r)
    r = api.post("/batches", files=[("images", ("a.png", png(), "image/png"))], data={"method": FF})
    assert r.status_code == 202 and r.headers["location"] == r.json()["status_url"]
    documented(spec, r)
    batch = api.get(r.headers["location"])
    documented(spec, batch)
    created_at = spec["components"]["schemas"]["BatchOut"]["properties"]["created_at"]
    assert created_at.get("format") == "date-time", created_at
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z?", batch.json()["created_at"])
    # A job's status is one of five words, and the contract names them (a client can switch on it).
    statuses = ["queued", "running", "done", "failed", "cancelled"]
    assert spec["components"]["schemas"]["JobStatus"]["enum"] == statuses
    for model in ("JobOut", "JobCreated", "BatchItemOut"):
        assert spec["components"]["schemas"][model]["properties"]["status"]["$ref"].endswith("/JobStatus")
    assert batch.json()["items"][0]["status"] in statuses and job.json()["status"] == "queued"


def test_health_is_part_of_the_contract(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    r = api.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert operation(spec, "GET", "/healthz")["summary"]
    documented(spec, r)


def test_what_a_rerun_or_a_batch_would_drop_is_refused(api: TestClient) -> None:
    """A JSON body to POST /jobs/{id}/rerun (its fields are all optional), a photo sent to it, or a photo sent
    to POST /batches as `image` instead of `images` was dropped without a word: refused, nothing queued."""
    spec = api.get("/openapi.json").json()
    job_id = a_finished_job(api)
    gray = ("b.png", png(value=50), "image/png")
    for r, status, words in (
        (api.post(f"/jobs/{job_id}/rerun", json={"options": {"vividness": 0.9}}), 415, "multipart/form-data"),
        (api.post(f"/jobs/{job_id}/rerun", files={"image": gray}), 422, "POST /colorize"),
        (
            api.post("/batches", files=[("images", ("a.png", png(), "image/png")), ("image", gray)]),
            422,
            "images",
        ),
    ):
        assert r.status_code == status and words in r.json()["detail"], r.text
        documented(spec, r)
    with session_scope() as s:
        assert s.query(Job).count() == 1
    # the ordinary forms still work: no body at all, and fields
    assert api.post(f"/jobs/{job_id}/rerun").status_code == 202
    assert api.post(f"/jobs/{job_id}/rerun", data={"options": "{}"}).status_code == 202


def test_every_documented_refusal_has_the_shape_that_is_sent(api: TestClient) -> None:
    """A 4xx is always {"detail": "..."} (ErrorOut): FastAPI's default 422 (a list of problems) is never
    sent, so a client generated from the schema must not expect it."""
    spec = api.get("/openapi.json").json()
    assert "HTTPValidationError" not in str(spec)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code.startswith("4") and "content" in response:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)
    r = api.get("/jobs/x/thumb.jpg?of=nothing")  # a 422 of a route that documented FastAPI's default
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


def test_a_server_fault_is_json_too(api: TestClient) -> None:
    from backend.main import create_app

    app = create_app()

    @app.get("/fault")
    def fault() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/fault")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json", r.text
    assert "failed" in r.json()["detail"]


def test_what_differs_by_cookie_is_kept_by_no_shared_cache(api: TestClient) -> None:
    r = api.post("/colorize", files={"image": ("a.png", png(), "image/png")}, data={"method": FF})
    assert r.status_code == 202, r.text
    job = api.get(r.json()["status_url"])  # `owned` and the maker's own fields depend on the cookie
    assert job.headers["cache-control"] == "private, no-cache" and "Cookie" in job.headers["vary"]
    assert api.get("/references").headers["cache-control"] == "private, no-cache"
    image = api.get(job.json()["urls"]["input"])  # an image is the same for everyone: cached as it was
    assert "immutable" in image.headers["cache-control"]


def test_readiness_asks_the_database_and_its_schema(api: TestClient) -> None:
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok"}
    from backend import migrate as mig

    mig.downgrade("0011")  # a schema behind this code's: not ready, and says what to do
    try:
        behind = api.get("/readyz")
        assert behind.status_code == 503 and "colorlab migrate" in behind.json()["database"]
    finally:
        mig.upgrade()
    assert api.get("/healthz").status_code == 200  # liveness never asks the database
