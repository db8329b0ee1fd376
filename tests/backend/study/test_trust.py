"""A study researchers can trust (README, "User study"), through the real app on SQLite and PostgreSQL:
identity that resumes and cannot be taken, faking made costly and visible, the code on reload, answers
after close, preview, participant actions, versioned texts, admin sessions that end and a shared, race-free
login throttle."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.db import session_scope
from backend.study.models import Participant, StudyTexts, Trial
from tests.backend.study.conftest import ADMIN_PASSWORD, csrf_of, login

PID = "5f1a2b3c4d5e6f7a8b9c0d1e"
PAIR = {"PROLIFIC_PID": PID, "STUDY_ID": "st", "SESSION_ID": "sess-1"}


def _second_client(c: TestClient, host: str = "testclient") -> TestClient:
    """Another device: the same app, its own cookie jar (and client address)."""
    return TestClient(c.app, client=(host, 50000))


def _answer(c: TestClient, slug: str, state: dict, **body: object) -> dict:
    trial = state["trial"]
    payload = {"trial_id": trial["id"], "response_ms": 800, **body}
    if not body:
        payload.update({"response": "real"} if trial["part"] == 1 else {"rating": 3})
    res = c.post(f"/study/{slug}/api/answer", json=payload)
    assert res.status_code == 200, res.text
    return res.json()


def _is_attention(trial_id: str) -> bool:
    with session_scope() as s:
        return bool(s.get(Trial, trial_id).is_attention)


def _shown(slug: str) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Trial).where(Trial.shown_at.is_not(None))) or 0


def test_prolific_pair_resumes_elsewhere_and_an_id_alone_is_refused(app_client, make_study) -> None:
    slug = make_study(trials=(3, 3), photos=4, methods=("cnn",))
    owner = app_client
    state = owner.post(f"/study/{slug}/api/start", json=PAIR).json()
    state = owner.post(f"/study/{slug}/api/begin", json={}).json()
    state = _answer(owner, slug, state)
    current = state["trial"]["id"]
    shown = _shown(slug)

    attacker = _second_client(owner, "10.9.9.9")
    for params in ({"PROLIFIC_PID": PID}, {**PAIR, "SESSION_ID": "guessed"}):
        res = attacker.get(f"/study/{slug}/api/state", params=params)
        assert res.status_code == 403 and "another session" in res.json()["detail"], res.text
        assert "trial" not in res.json() and "progress" not in res.json()
        assert attacker.post(f"/study/{slug}/api/start", json=params).status_code == 403
        page = attacker.get(f"/study/{slug}", params=params)
        assert page.status_code == 403 and "belongs to someone else" in page.text
    assert _shown(slug) == shown  # nothing was marked shown by the attempts
    assert attacker.get(f"/study/{slug}/images/{current}.jpg").status_code == 404

    # the owner on a second device with the link Prolific gave them: resume, fresh cookie, same trial
    device = _second_client(owner, "10.1.1.1")
    assert device.get(f"/study/{slug}/api/state", params=PAIR).json()["phase"] == "resume"
    resumed = device.post(f"/study/{slug}/api/start", json=PAIR).json()
    assert resumed["phase"] == "part1" and resumed["trial"]["id"] == current
    assert device.get(f"/study/{slug}/images/{current}.jpg").status_code == 200
    # the first device's cookie was superseded: its next answer is refused, and the page recovers by resuming
    assert (
        owner.post(f"/study/{slug}/api/answer", json={"trial_id": current, "response": "real"}).status_code
        == 403
    )
    state = _answer(device, slug, resumed)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1

    # closed study: the hijack still fails; the owner may finish within the grace period
    from backend.study import builder

    with session_scope() as s:
        builder.close_study(s, builder.get_study(s, slug))
    assert attacker.post(f"/study/{slug}/api/start", json={"PROLIFIC_PID": PID}).status_code == 403
    while state["phase"] in ("part1", "part2"):
        state = _answer(device, slug, state)
    assert state["phase"] == "done" and state["completion_code"] == "C0DE-42"
    assert state["return_url"] == "https://app.prolific.com/submissions/complete?cc=C0DE-42"
    # a reload (and the same pair on a third device) shows the code again
    again = device.get(f"/study/{slug}/api/state", params=PAIR).json()
    assert again["phase"] == "done" and again["receipt"] == state["receipt"]


def test_released_participant_binds_to_a_new_session(sqlite_client, make_study) -> None:
    slug = make_study(trials=(2, 2), photos=4, methods=("cnn",))
    c = sqlite_client
    c.post(f"/study/{slug}/api/start", json=PAIR)
    phone = _second_client(c)
    new_pair = {**PAIR, "SESSION_ID": "sess-2"}
    assert phone.post(f"/study/{slug}/api/start", json=new_pair).status_code == 403
    login(c)
    page = c.get(f"/admin/studies/{slug}")
    with session_scope() as s:
        pid = s.scalars(select(Participant.id)).one()
    assert pid in page.text and "one per browser only" in page.text
    res = c.post(
        f"/admin/studies/{slug}/participants/{pid}/release",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert phone.post(f"/study/{slug}/api/start", json=new_pair).json()["phase"] == "instructions"
    with session_scope() as s:
        assert s.get(Participant, pid).prolific_session_id == "sess-2"  # bound to the new attempt
    assert _second_client(c).post(f"/study/{slug}/api/start", json=PAIR).status_code == 403


def test_start_limit_per_client_and_resumes_do_not_count(sqlite_client, make_study, monkeypatch) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("STUDY_START_RATE", "3")
    reset_caches()
    slug = make_study(trials=(2, 2), photos=4, methods=("cnn",))
    c = sqlite_client
    for i in range(3):
        assert c.post(f"/study/{slug}/api/start", json={"participant": f"p{i}"}).status_code == 200
    assert c.post(f"/study/{slug}/api/start", json={"participant": "p2"}).status_code == 200  # a resume
    res = c.post(f"/study/{slug}/api/start", json={"participant": "p3"})
    assert res.status_code == 429 and "too many new participants" in res.json()["detail"]
    other = _second_client(c, "192.0.2.7")  # another address is not affected
    assert other.post(f"/study/{slug}/api/start", json={"participant": "p3"}).status_code == 200
    # an id of this kind is known only to the browser it started in: the refusal says to go back there
    res = _second_client(c, "192.0.2.8").post(f"/study/{slug}/api/start", json={"participant": "p3"})
    assert res.status_code == 403 and "continue in that browser" in res.json()["detail"], res.text


def test_fakes_are_visible_in_the_export(app_client, make_study) -> None:
    import csv
    import io
    import time

    slug = make_study(trials=(3, 3), photos=4, methods=("cnn",), attention=True)
    bot = app_client
    bot.post(f"/study/{slug}/api/start", json={}, headers={"user-agent": "Mozilla/5.0;=1+1"})
    state = bot.post(f"/study/{slug}/api/begin", json={}).json()
    while state["phase"] in ("part1", "part2"):  # instant, identical answers; response_ms 0 is accepted
        body = {"response": "real"} if state["trial"]["part"] == 1 else {"rating": 4}
        state = _answer(bot, slug, state, response_ms=0, **body)
    human = _second_client(bot, "10.2.2.2")
    human.post(f"/study/{slug}/api/start", json={})
    state = human.post(f"/study/{slug}/api/begin", json={}).json()
    while state["phase"] in ("part1", "part2"):
        time.sleep(0.45)
        trial = state["trial"]
        body = (
            {"response": ["real", "fake"][trial["index"] % 2]}
            if trial["part"] == 1
            else {"rating": 2 + trial["index"] % 3}
        )
        if trial["instruction"]:
            body = {"rating": int(trial["instruction"].split("choose ")[1][0])}
        elif _is_attention(trial["id"]):  # the gray image: a person sees it is colorized
            body = {"response": "fake"}
        state = _answer(human, slug, state, **body)
    assert state["receipt"] != bot.get(f"/study/{slug}/api/state").json()["receipt"]  # per participant

    login(bot)
    text = bot.get(f"/admin/studies/{slug}/export/participants.csv").text
    rows = {r["user_agent"]: r for r in csv.DictReader(io.StringIO(text))}
    fake = rows["'Mozilla/5.0;'=1+1"]  # neutralised for spreadsheets that split cells on ;
    real = next(r for ua, r in rows.items() if ua != "'Mozilla/5.0;'=1+1")
    assert fake["identical_answers"] == "true" and int(fake["too_fast_answers"]) >= 6
    assert fake["attention_failed"] == "true"  # "real" for a gray image
    assert real["identical_answers"] == "false" and real["too_fast_answers"] == "0"
    assert real["attention_failed"] == "false" and int(real["median_server_response_ms"]) >= 400
    trials = list(csv.DictReader(io.StringIO(bot.get(f"/admin/studies/{slug}/export/trials.csv").text)))
    mine = [t for t in trials if t["participant"] == fake["participant"]]
    assert all(t["response_ms"] == "0" for t in mine) and int(fake["answers"]) == len(mine) == 8
    # the participants row counts as trials.csv does (attention checks in both); the bot answers at once,
    # but a loaded machine (the parallel suite) may take 400 ms over one of its requests
    fast = sum(t["too_fast"] == "true" for t in mine)
    assert int(fake["too_fast_answers"]) == fast >= 6

    # one more participant consents and is assigned trials but never begins: nothing of it is "shown"
    _second_client(bot, "10.3.3.3").post(f"/study/{slug}/api/start", json={})
    trials = list(csv.DictReader(io.StringIO(bot.get(f"/admin/studies/{slug}/export/trials.csv").text)))
    stimuli = list(csv.DictReader(io.StringIO(bot.get(f"/admin/studies/{slug}/export/stimuli.csv").text)))
    for part in (1, 2):
        served = sum(1 for t in trials if t["part"] == str(part) and t["shown_at"])
        assert served < sum(1 for t in trials if t["part"] == str(part))  # the new one's are assigned only
        assert sum(int(s[f"shown_part{part}"]) for s in stimuli) == served
    assert all(int(t["server_response_ms"]) >= 400 for t in trials if t["participant"] == real["participant"])


def test_answers_after_close_follow_the_grace_setting(sqlite_client, make_study, monkeypatch) -> None:
    from backend.config import get_settings
    from backend.study import builder
    from tests.conftest import reset_caches

    slug = make_study(trials=(2, 2), photos=4, methods=("cnn",))
    c = sqlite_client
    c.post(f"/study/{slug}/api/start", json={"participant": "late-1"})
    state = c.post(f"/study/{slug}/api/begin", json={}).json()
    with session_scope() as s:
        builder.close_study(s, builder.get_study(s, slug))
    state = _answer(c, slug, state)  # within the default 60-minute grace period
    monkeypatch.setenv("STUDY_CLOSE_GRACE_MINUTES", "0")
    reset_caches()
    res = c.post(f"/study/{slug}/api/answer", json={"trial_id": state["trial"]["id"], "response": "real"})
    assert res.status_code == 409 and "no longer accepts answers" in res.json()["detail"]
    # past the grace period no image is shown that could not be answered: the state says closed, up front,
    # to someone mid-study and to someone who consented but had not begun (whose begin changes nothing)
    mid_study = c.get(f"/study/{slug}/api/state").json()
    assert mid_study["phase"] == "closed" and not mid_study.get("trial")
    with session_scope() as s:
        builder.open_study(s, get_settings(), builder.get_study(s, slug))
    reset_caches()
    other = _second_client(c, "10.9.9.9")
    assert other.post(f"/study/{slug}/api/start", json={}).json()["phase"] == "instructions"
    with session_scope() as s:
        builder.close_study(s, builder.get_study(s, slug))
    reset_caches()
    assert other.post(f"/study/{slug}/api/begin", json={}).json()["phase"] == "closed"
    with session_scope() as s:
        begun = s.scalars(select(Participant).where(Participant.started_at.is_not(None))).all()
        assert [p.external_id for p in begun] == ["late-1"]


def test_preview_records_nothing_and_works_in_a_draft(sqlite_client, make_study) -> None:
    slug = make_study(trials=(2, 2), photos=4, methods=("cnn",), open_=False)
    c = sqlite_client
    login(c)
    page = c.get(f"/admin/studies/{slug}")
    res = c.post(
        f"/admin/studies/{slug}/preview", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    # #consent: the page shows the consent text first, as participants see it
    assert res.status_code == 303 and res.headers["location"] == f"/study/{slug}#consent"
    assert c.get(f"/study/{slug}").status_code == 200  # a draft, but this browser previews it
    state = c.get(f"/study/{slug}/api/state").json()
    assert state["phase"] == "instructions" and state["preview"] is True
    state = c.post(f"/study/{slug}/api/begin", json={}).json()
    assert c.get(state["trial"]["image_url"]).status_code == 200
    while state["phase"] in ("part1", "part2"):
        state = _answer(c, slug, state)
    assert state["phase"] == "done" and state["preview"]
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0
        assert s.scalar(select(func.count()).select_from(Trial)) == 0
    assert c.get(f"/admin/studies/{slug}/export/trials.json").json() == []


def test_exclude_delete_and_versioned_texts(app_client, make_study) -> None:
    slug = make_study(trials=(2, 2), photos=4, methods=("cnn",), open_=False)
    c = app_client
    login(c)

    def post(path: str, **data: str) -> None:
        token = csrf_of(c.get(f"/admin/studies/{slug}").text)
        res = c.post(
            f"/admin/studies/{slug}/{path}", data={"csrf_token": token, **data}, follow_redirects=False
        )
        assert res.status_code == 303, res.text

    texts = {"title": "Real or not", "consent_text": "Consent v0", "instructions": "Look closely."}
    post("texts", **texts)  # a draft: edited in place, no version
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(StudyTexts)) == 0
    post("open")
    people = [_second_client(c, f"10.0.0.{i}") for i in range(3)]
    for i, person in enumerate(people[:2]):
        assert "Consent v0" in person.get(f"/study/{slug}").text
        person.post(f"/study/{slug}/api/start", json={"participant": f"v1-{i}"})
    post("texts", **{**texts, "consent_text": "Consent, second wording"})
    assert "Consent, second wording" in people[2].get(f"/study/{slug}").text
    people[2].post(f"/study/{slug}/api/start", json={"participant": "v2-0"})
    for person in people:
        state = person.post(f"/study/{slug}/api/begin", json={}).json()
        while state["phase"] in ("part1", "part2"):
            state = _answer(person, slug, state)
    rows = {r["external_id"]: r for r in c.get(f"/admin/studies/{slug}/export/participants.json").json()}
    assert [rows[k]["texts_version"] for k in ("v1-0", "v1-1", "v2-0")] == [1, 1, 2]
    with session_scope() as s:
        versions = s.scalars(select(StudyTexts).order_by(StudyTexts.version)).all()
        assert [(v.version, v.consent_text) for v in versions] == [
            (1, "Consent v0"),
            (2, "Consent, second wording"),
        ]

    summary = c.get(f"/admin/studies/{slug}/export/summary.json").json()
    assert summary["participants"]["total"] == 3
    post(f"participants/{rows['v1-0']['participant']}/exclude")
    post(f"participants/{rows['v1-1']['participant']}/returned")
    summary = c.get(f"/admin/studies/{slug}/export/summary.json").json()
    assert summary["participants"]["total"] == 1 and summary["participants"]["marked"] == 2
    # the studies list counts as the dashboard does: 1 participant, 1 completed, 2 left out said beside
    listed = c.get("/admin").text
    assert '<td class="num">1 <span class="muted small">(+2 left out by you)</span></td>' in listed
    assert '<td class="num">1</td>' in listed.split("left out by you")[1]
    assert sum(cond["part1"]["n"] for cond in summary["conditions"]) == 2  # only v2-0's answers count
    statuses = {
        r["external_id"]: r["status"] for r in c.get(f"/admin/studies/{slug}/export/participants.json").json()
    }
    assert statuses == {"v1-0": "excluded", "v1-1": "returned", "v2-0": "active"}
    post(f"participants/{rows['v1-0']['participant']}/include")
    post(f"participants/{rows['v1-1']['participant']}/delete")
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 2
        assert (
            s.scalar(
                select(func.count())
                .select_from(Trial)
                .where(Trial.participant_id == rows["v1-1"]["participant"])
            )
            == 0
        )
    token = csrf_of(c.get(f"/admin/studies/{slug}").text)
    bad = c.post(f"/admin/studies/{slug}/participants/nope/exclude", data={"csrf_token": token})
    assert bad.status_code == 404 and bad.json()["detail"]
    assert (
        c.post(
            f"/admin/studies/{slug}/participants/{rows['v2-0']['participant']}/boom",
            data={"csrf_token": token},
        ).status_code
        == 404
    )
    typed = {"csrf_token": token, "title": "", "consent_text": "A long revised consent text."}
    untitled = c.post(f"/admin/studies/{slug}/texts", data=typed, headers={"accept": "text/html"})
    # the study page again, the error beside the texts as typed (not an error page that loses them)
    assert untitled.status_code == 422 and "Not saved: the study needs a title" in untitled.text
    assert "A long revised consent text.</textarea>" in untitled.text


def test_logout_revokes_the_session_server_side(sqlite_client) -> None:
    c = sqlite_client
    login(c)
    copied = dict(c.cookies)
    page = c.get("/admin")
    assert page.status_code == 200
    token = csrf_of(page.text)
    assert c.post("/admin/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    thief = _second_client(c)
    thief.cookies.update(copied)
    assert thief.get("/admin", headers={"accept": "application/json"}).status_code == 401
    res = thief.post(
        "/admin/studies/x/close", data={"csrf_token": token}, headers={"accept": "application/json"}
    )
    assert res.status_code == 401


def test_login_throttle_per_address_shared_and_race_free(app_client, database) -> None:
    from backend import auth

    # 60 parallel guesses from one address: exactly LOGIN_FAILURES_ALLOWED get checked
    results: list[bool] = []
    barrier = threading.Barrier(30)

    def guess() -> None:
        barrier.wait()
        for _ in range(2):
            results.append(auth.reserve_login_attempt("198.51.100.1"))

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == auth.LOGIN_FAILURES_ALLOWED and len(results) == 60

    # over HTTP: the locked-out address gets 429 even with the right password; another address logs in
    c = app_client
    for _ in range(auth.LOGIN_FAILURES_ALLOWED):
        auth.reserve_login_attempt("testclient")
    page = c.get("/admin/login")
    res = c.post(
        "/admin/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": csrf_of(page.text), "next": "/admin"},
        follow_redirects=False,
    )
    assert res.status_code == 429
    other = _second_client(c, "203.0.113.5")
    page = other.get("/admin/login")
    res = other.post(
        "/admin/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": csrf_of(page.text), "next": "/admin"},
        follow_redirects=False,
    )
    assert res.status_code == 303
    # the count lives in the database: another process sees this address locked out too
    import subprocess
    import sys

    code = "from backend import auth; print(auth.reserve_login_attempt('testclient'))"
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert other_process.stdout.strip() == "False", other_process.stderr
    from backend.study.models import LoginThrottle

    with session_scope() as s:
        assert s.get(LoginThrottle, "testclient").attempts == auth.LOGIN_FAILURES_ALLOWED + 2
        assert s.get(LoginThrottle, "203.0.113.5") is None  # a success starts afresh


def test_development_secret_persists_with_mode_0600(tmp_path) -> None:
    from backend.config import Settings, development_secret

    first = development_secret(tmp_path / "data")
    path = tmp_path / "data" / "secret_key"
    assert len(first) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert development_secret(tmp_path / "data") == first  # the next start reads the same key
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(environment="production", admin_password="pw", secret_key="", data_dir=tmp_path / "data")
