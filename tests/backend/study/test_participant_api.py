"""The participant flow through the JSON API (SQLite and PostgreSQL): consent, instructions, both parts,
idempotent answers, resume, refusal of a second attempt, and every bad input answered with a 4xx."""

from __future__ import annotations

import base64
import json
import re

import pytest
from sqlalchemy import func, select, update

from backend.db import session_scope
from backend.study.models import Participant, Study, Trial


def _answer(client, slug, state, **extra):  # type: ignore[no-untyped-def]
    trial = state["trial"]
    body = {"trial_id": trial["id"], "response_ms": 900, **extra}
    if not extra:
        body.update({"response": "real"} if trial["part"] == 1 else {"rating": 3})
    return client.post(f"/study/{slug}/api/answer", json=body)


def _run_through(client, slug, params=""):  # type: ignore[no-untyped-def]
    state = client.post(f"/study/{slug}/api/start", json=params or {}).json()
    assert state["phase"] == "instructions"
    state = client.post(f"/study/{slug}/api/begin", json={}).json()
    seen = []
    while state["phase"] in ("part1", "part2"):
        seen.append((state["trial"]["part"], state["trial"]["index"]))
        res = _answer(client, slug, state)
        assert res.status_code == 200, res.text
        state = res.json()
    return state, seen


def test_whole_flow_resume_and_idempotent_answers(app_client, make_study) -> None:
    slug = make_study(trials=(5, 4))
    c = app_client
    page = c.get(f"/study/{slug}?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e&STUDY_ID=s1&SESSION_ID=x1")
    assert page.status_code == 200 and "I agree to take part" in page.text
    ident = {"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "STUDY_ID": "s1", "SESSION_ID": "x1"}
    assert c.get(f"/study/{slug}/api/state", params=ident).json()["phase"] == "consent"
    state = c.post(f"/study/{slug}/api/start", json=ident).json()
    assert state["phase"] == "instructions"
    # answering before the instructions is refused
    state = c.post(f"/study/{slug}/api/begin", json={}).json()
    assert state["phase"] == "part1" and state["trial"]["index"] == 1 and state["trial"]["total"] == 5
    img = c.get(state["trial"]["image_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    # the same image comes inline in the state (the page needs no second request), and the next trial's
    # with the answer that leads to it
    inline = state["trial"]["image"]
    assert (
        inline.startswith("data:image/jpeg;base64,")
        and base64.b64decode(inline.split(",", 1)[1]) == img.content
    )

    first = state["trial"]["id"]
    nxt = _answer(c, slug, state, response="fake").json()
    assert nxt["trial"]["index"] == 2 and not nxt["duplicate"]
    assert (
        base64.b64decode(nxt["trial"]["image"].split(",", 1)[1]) == c.get(nxt["trial"]["image_url"]).content
    )
    # a double submit of the same trial changes nothing and does not duplicate
    again = c.post(f"/study/{slug}/api/answer", json={"trial_id": first, "response": "real"})
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["trial"]["index"] == 2
    with session_scope() as s:
        t = s.get(Trial, first)
        assert t.response == "fake" and t.response_ms == 900 and t.shown_at and t.answered_at
    # reload: the state (by cookie, and by the Prolific id) resumes at the same trial
    assert c.get(f"/study/{slug}/api/state").json()["trial"]["id"] == nxt["trial"]["id"]
    assert c.get(f"/study/{slug}/api/state", params=ident).json()["trial"]["id"] == nxt["trial"]["id"]
    assert c.post(f"/study/{slug}/api/start", json=ident).json()["trial"]["id"] == nxt["trial"]["id"]

    state = nxt
    parts = []
    while state["phase"] in ("part1", "part2"):
        parts.append(state["trial"]["part"])
        state = _answer(c, slug, state).json()
    assert parts == [1] * 4 + [2] * 4
    assert state["phase"] == "done" and state["completion_code"] == "C0DE-42"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Trial).where(Trial.answered_at.is_not(None))) == 9
        p = s.scalars(select(Participant)).one()
        assert p.source == "prolific" and p.prolific_session_id == "x1" and p.completed_at is not None

    # a reload (page, state, start) shows the same participant's code again; never a second attempt
    assert c.get(f"/study/{slug}?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e").status_code == 200
    done = c.post(f"/study/{slug}/api/start", json=ident).json()
    assert done["phase"] == "done" and done["completion_code"] == "C0DE-42" and done["receipt"] == p.receipt
    assert c.get(f"/study/{slug}/api/state").json()["phase"] == "done"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1


def test_anonymous_participant_is_one_per_browser(sqlite_client, make_study) -> None:
    app_client = sqlite_client
    slug = make_study(trials=(2, 2), photos=4, methods=("cnn",))
    state, seen = _run_through(app_client, slug)
    assert state["phase"] == "done" and len(seen) == 4
    assert app_client.get(f"/study/{slug}").status_code == 200
    res = app_client.post(f"/study/{slug}/api/start", json={})
    assert res.status_code == 200 and res.json()["phase"] == "done"  # the same participant, code shown again
    del app_client.cookies["colorlab_participant"]  # the session cookie lost: the browser is recognised
    assert app_client.get(f"/study/{slug}/api/state").json()["phase"] == "resume"
    assert app_client.post(f"/study/{slug}/api/start", json={}).json()["phase"] == "done"
    app_client.cookies.clear()  # a new browser is a new anonymous participant
    assert app_client.post(f"/study/{slug}/api/start", json={}).status_code == 200
    with session_scope() as s:
        ids = s.scalars(select(Participant.external_id)).all()
        assert len(ids) == 2 and all(i.startswith("anon-") for i in ids)


def test_bad_inputs_are_4xx(sqlite_client, make_study) -> None:
    c = sqlite_client
    slug = make_study(trials=(2, 2), photos=4, methods=("cnn",), attention=True)
    assert "paying attention" in c.get(f"/study/{slug}").text  # the instructions explain the checks
    assert c.get("/study/no-such-study").status_code == 404
    assert c.get("/study/no-such-study/api/state").json()["detail"]
    assert c.get(f"/study/{slug}?PROLIFIC_PID=<script>").status_code == 422
    assert c.post(f"/study/{slug}/api/start", json={"PROLIFIC_PID": "a b"}).status_code == 422
    for newline in ({"PROLIFIC_PID": "abc\n"}, {"participant": "p-1\n"}):  # "$" let a final newline through
        assert c.post(f"/study/{slug}/api/start", json=newline).status_code == 422
    assert c.get(f"/study/{slug}?PROLIFIC_PID=abc%0A").status_code == 422
    assert c.post(f"/study/{slug}/api/start", json={"nope": 1}).status_code == 422
    assert (
        c.post(
            f"/study/{slug}/api/start",
            content=b"PROLIFIC_PID=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ).status_code
        == 415
    )
    assert c.post(f"/study/{slug}/api/begin", json={}).status_code == 403  # no session yet
    assert c.post(f"/study/{slug}/api/answer", json={"trial_id": "x", "response": "real"}).status_code == 403
    state = c.post(f"/study/{slug}/api/start", json={"participant": "p-1"}).json()
    # begin takes {} (as its OpenAPI says); none, or broken JSON, is told so in words
    res = c.post(f"/study/{slug}/api/begin")
    assert res.status_code == 415 and "e.g. {}" in res.json()["detail"]
    res = c.post(f"/study/{slug}/api/begin", content=b"nope", headers={"content-type": "application/json"})
    assert res.status_code == 422 and res.json()["detail"].startswith("the body is not valid JSON")
    res = c.post(f"/study/{slug}/api/begin", content=b"", headers={"content-type": "application/json"})
    assert res.status_code == 422 and "a JSON body is required" in res.json()["detail"]
    state = c.post(f"/study/{slug}/api/begin", json={}).json()
    tid = state["trial"]["id"]
    for body, code in [
        ({"trial_id": tid, "rating": 3}, 422),  # part 1 wants a response
        ({"trial_id": tid, "response": "maybe"}, 422),
        ({"trial_id": tid, "response": "real", "response_ms": -5}, 422),
        ({"trial_id": "unknown", "response": "real"}, 404),
        ({"response": "real"}, 422),
        ({"trial_id": tid, "response": "real", "extra": 1}, 422),
        ({"trial_id": tid, "response": "real", "response_ms": "12"}, 422),  # strict: a string is no number
    ]:
        res = c.post(f"/study/{slug}/api/answer", json=body)
        assert res.status_code == code, (body, res.text)
        assert isinstance(res.json()["detail"], str)
    # A key twice (JSON allows it; parsers keep the last): which answer was meant cannot be known
    twice = b'{"trial_id": "%s", "response": "fake", "response": "real"}' % tid.encode()
    res = c.post(f"/study/{slug}/api/answer", content=twice, headers={"content-type": "application/json"})
    assert res.status_code == 422 and '"response" more than once' in res.json()["detail"], res.text
    with session_scope() as s:
        trial = s.get(Trial, tid)
        assert trial is not None and trial.response is None and trial.answered_at is None
    deep = b"[" * 5000 + b"]" * 5000  # past Python's recursion limit: a 4xx, never a 500
    res = c.post(f"/study/{slug}/api/answer", content=deep, headers={"content-type": "application/json"})
    assert 400 <= res.status_code < 500, res.text
    with session_scope() as s:
        later = s.scalars(select(Trial).where(Trial.id != tid, Trial.part == 1)).first()
    assert (
        c.post(f"/study/{slug}/api/answer", json={"trial_id": later.id, "response": "real"}).status_code
        == 409
    )
    assert c.get(f"/study/{slug}/images/{later.id}.jpg").status_code == 200
    c2_cookies = dict(c.cookies)
    c.cookies.clear()
    assert c.get(f"/study/{slug}/images/{later.id}.jpg").status_code == 404  # someone else's trial
    c.cookies.update(c2_cookies)
    # attention checks are in the data: one per part, with the instructed answer
    with session_scope() as s:
        checks = s.scalars(select(Trial).where(Trial.is_attention.is_(True)).order_by(Trial.part)).all()
        assert [t.part for t in checks] == [1, 2] and checks[0].expected == "fake"
        assert checks[1].expected in {"2", "3", "4"} and all(t.position > 0 for t in checks)


def test_closed_and_draft_studies_refuse_new_participants(sqlite_client, make_study) -> None:
    app_client = sqlite_client
    from backend.config import get_settings
    from backend.study import builder

    draft = make_study(open_=False, photos=5, methods=("cnn",))
    res = app_client.get(f"/study/{draft}")
    assert res.status_code == 409 and "not started yet" in res.text
    assert app_client.post(f"/study/{draft}/api/start", json={}).status_code == 409
    slug = make_study(photos=5, methods=("cnn",))
    started = app_client.post(f"/study/{slug}/api/start", json={"participant": "early"}).json()
    assert started["phase"] == "instructions"
    with session_scope() as s:
        builder.close_study(s, builder.get_study(s, slug))
        assert get_settings()
    assert app_client.get(f"/study/{slug}?participant=late").status_code == 409
    # a participant who started before closing may finish
    state = app_client.post(f"/study/{slug}/api/begin", json={}).json()
    assert state["phase"] == "part1"


def test_answer_rate_limit(sqlite_client, make_study, monkeypatch) -> None:
    from tests.conftest import reset_caches

    slug = make_study(photos=5, methods=("cnn",))
    monkeypatch.setenv("STUDY_ANSWER_RATE", "2")
    reset_caches()
    c = sqlite_client
    c.post(f"/study/{slug}/api/start", json={"participant": "fast-clicker"})
    state = c.post(f"/study/{slug}/api/begin", json={}).json()
    codes = []
    for _ in range(3):
        res = _answer(c, slug, state)
        codes.append(res.status_code)
        state = res.json() if res.status_code == 200 else state
    assert codes == [200, 200, 429]
    assert res.headers["retry-after"] and "too many answers" in res.json()["detail"]


def test_production_needs_secrets() -> None:
    import pytest
    from pydantic import ValidationError

    from backend.config import Settings

    with pytest.raises(ValidationError, match="ADMIN_PASSWORD and SECRET_KEY"):
        Settings(environment="production", admin_password="", secret_key="")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(environment="production", admin_password="pw", secret_key="short")
    ok = Settings(environment="production", admin_password="pw", secret_key="k" * 40)
    assert ok.admin_password.get_secret_value() == "pw" and "pw" not in repr(ok)


def test_answers_do_not_wait_behind_a_crowd_opening_the_link(sqlite_db, make_study, monkeypatch) -> None:
    """Answers have threads of their own: with every thread of the participants' lane held (here: resolving
    who a visitor is takes as long as the test wants), a participant in mid-study gets the next trial."""
    import asyncio
    import threading
    import time

    import httpx

    from backend.config import get_settings
    from backend.main import create_app
    from backend.study import participants as service

    slug = make_study(trials=(2, 2))
    gate = threading.Event()
    resolve = service.resolve

    def slow_resolve(*args, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(20)
        return resolve(*args, **kwargs)

    async def scenario() -> float:
        transport = httpx.ASGITransport(app=create_app())

        def client() -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=transport, base_url="http://t")

        async with client() as me, client() as crowd:
            await me.post(f"/study/{slug}/api/start", json={"participant": "mid-study"})
            trial = (await me.post(f"/study/{slug}/api/begin", json={})).json()["trial"]
            monkeypatch.setattr(service, "resolve", slow_resolve)
            visits = [
                asyncio.create_task(crowd.get(f"/study/{slug}/api/state?participant=crowd-{i}"))
                for i in range(get_settings().study_threads + 2)
            ]
            await asyncio.sleep(0.3)  # the crowd now holds every thread of its lane
            assert not any(visit.done() for visit in visits)
            started = time.monotonic()
            answer = {"trial_id": trial["id"], "response": "real"}
            res = await me.post(f"/study/{slug}/api/answer", json=answer)
            waited = time.monotonic() - started
            assert res.status_code == 200 and res.json()["trial"]["index"] == 2
            gate.set()
            assert all(r.status_code == 200 for r in await asyncio.gather(*visits))
            return waited

    try:
        assert asyncio.run(scenario()) < 5
    finally:
        gate.set()


def _initial_state(page_html: str) -> dict:
    match = re.search(r'<script type="application/json" id="initial-state">(.*?)</script>', page_html, re.S)
    assert match, "the page carries no state"
    return json.loads(match.group(1))


def test_the_page_carries_the_state_the_api_would_give(app_client, make_study) -> None:
    """study.js renders the state in the page instead of asking /state on load: it must be the same state,
    for a newcomer, a participant in mid-study (with the trial's image) and one who lost the cookie, and
    a title a researcher typed can neither end the script element nor change the state."""
    slug = make_study()
    title = "</script><script>alert(1)</script> & <!-- Q"
    with session_scope() as s:
        s.execute(update(Study).where(Study.slug == slug).values(title=title))
    c = app_client
    link = "PROLIFIC_PID=60aa0bb1cc2dd3ee4ff5a6b7&STUDY_ID=st&SESSION_ID=se"
    ident = {"PROLIFIC_PID": "60aa0bb1cc2dd3ee4ff5a6b7", "STUDY_ID": "st", "SESSION_ID": "se"}

    def page_and_api() -> tuple[dict, dict]:
        page = c.get(f"/study/{slug}?{link}")
        assert page.status_code == 200 and "<script>alert(1)" not in page.text
        api = c.get(f"/study/{slug}/api/state?{link}")
        assert page.headers["cache-control"] == api.headers["cache-control"] == "no-store"  # someone's state
        return _initial_state(page.text), api.json()

    first, api = page_and_api()
    assert first == api and first["phase"] == "consent" and first["title"] == title
    c.post(f"/study/{slug}/api/start", json=ident)
    trial = c.post(f"/study/{slug}/api/begin", json={}).json()["trial"]
    mid, api = page_and_api()
    assert mid == api and mid["phase"] == "part1" and mid["trial"]["id"] == trial["id"]
    assert mid["trial"]["image"] == trial["image"]
    c.cookies.clear()  # another device with the same Prolific link: the page says resume, as the API does
    lost, api = page_and_api()
    assert lost == api and lost["phase"] == "resume"


def test_answers_are_strict_json_types() -> None:
    """JSON true is not a star and "12" is not a number of milliseconds (pydantic's lax mode took both)."""
    from pydantic import ValidationError

    from backend.study.schemas import AnswerIn

    assert AnswerIn.model_validate({"trial_id": "t", "rating": 1, "response_ms": 12}).rating == 1
    for bad in ({"rating": True}, {"rating": "2"}, {"rating": 2.0}, {"response_ms": "12"}):
        with pytest.raises(ValidationError):
            AnswerIn.model_validate({"trial_id": "t", **bad})
