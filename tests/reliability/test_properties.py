"""Property-based: random forms, options and JSON bodies thrown at a real `colorlab serve` process
(`POST /colorize`, `POST /compare`, the study's participant API) never get a 5xx."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import child_env, migrate, start_service

pytestmark = pytest.mark.slow
CHECKS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (90, 120, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
hostile_json = st.one_of(
    json_values.map(json.dumps),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(1, 6000).map(lambda n: '{"iterations": ' + "9" * n + "}"),
    st.integers(1, 400).map(lambda n: '{"size": 1e' + "9" * n + "}"),
    st.sampled_from(['{"size": NaN}', '{"size": Infinity}', '{"iterations": -0}', "{", "null", '"x"']),
    st.text(max_size=200),
)
field_names = st.sampled_from(["iterations", "size", "style_weight", "optimizer", "hints", "vividness", "x"])
form_fields = st.dictionaries(field_names | st.text(min_size=1, max_size=8), st.text(max_size=30), max_size=4)
methods = st.sampled_from(["cnn", "fusion", "gan", "exemplar", "nope", ""]) | st.text(max_size=12)
images = st.sampled_from([PNG, b"", b"not an image", PNG[: len(PNG) // 2]]) | st.binary(max_size=64)


@pytest.fixture
def base(spawn, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    url, _, _ = start_service(
        spawn, child_env(DATA_DIR=tmp_path / "srv", COLORIZE_RATE=1_000_000), worker=None
    )
    yield url


def test_colorize_and_compare_never_answer_5xx(base: str) -> None:
    http = httpx.Client(base_url=base, timeout=60)

    @CHECKS
    @given(
        method=methods,
        image=images,
        options=st.none() | hostile_json,
        fields=form_fields,
        path=st.sampled_from(["/colorize", "/compare"]),
    )
    def check(method: str, image: bytes, options: str | None, fields: dict[str, str], path: str) -> None:
        data = {**fields, "method": method, "methods": method}
        if options is not None:
            data["options"] = options
        r = http.post(path, files={"image": ("x.png", image, "image/png")}, data=data)
        assert r.status_code < 500, (r.status_code, r.text[:300])
        assert "detail" in r.json() or r.status_code == 202

    check()


def test_study_participant_api_never_answers_5xx(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from backend.config import get_settings
    from backend.db import session_scope
    from backend.study import builder
    from tests.backend.study.conftest import finish_jobs, photo_files

    migrate()
    spec = builder.StudySpec(
        title="t", methods=["cnn"], trials_part1=2, trials_part2=2, attention_checks=False
    )
    with session_scope() as session:
        study = builder.create_study(session, get_settings(), spec, photo_files(2), check_available=False)
        finish_jobs(session, study)
        builder.open_study(session, get_settings(), study)
        slug = study.slug
    url, _, _ = start_service(spawn, child_env(DATA_DIR=tmp_path / "var"), worker=None)
    http = httpx.Client(base_url=url, timeout=60)

    @CHECKS
    @given(
        body=hostile_json,
        step=st.sampled_from(["start", "begin", "answer", "state"]),
        which=st.sampled_from([slug, "nope", "x" * 300]),
    )
    def check(body: str, step: str, which: str) -> None:
        r = http.post(
            f"/study/{which}/api/{step}", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code < 500, (r.status_code, r.text[:300])

    check()
