"""The researcher area: login (hashed password, CSRF), refusal without login, study builder on the web,
opening only when ready, live results with charts, and streamed exports that parse back."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta

from sqlalchemy import func, select

from backend.config import get_settings
from backend.db import session_scope
from backend.models import Job
from backend.study.models import Participant, Trial
from tests.backend.study.conftest import ADMIN_PASSWORD, csrf_of, login, photo_paths
from tests.conftest import method_available


def test_everything_refuses_without_login(sqlite_client, make_study) -> None:
    c = sqlite_client
    slug = make_study(photos=5, methods=("cnn",))
    html = {"accept": "text/html"}
    for path in ["/admin", "/admin/studies/new", f"/admin/studies/{slug}", f"/admin/studies/{slug}/results"]:
        res = c.get(path, headers=html, follow_redirects=False)
        assert res.status_code == 303 and res.headers["location"].startswith("/admin/login?next="), path
        assert c.get(path).status_code == 401
    for kind in ("trials", "participants", "stimuli", "summary"):
        for fmt in ("csv", "json"):
            res = c.get(f"/admin/studies/{slug}/export/{kind}.{fmt}")
            assert res.status_code == 401 and res.json()["detail"]
    for action in ("open", "close", "retry"):
        assert c.post(f"/admin/studies/{slug}/{action}", data={"csrf_token": "x"}).status_code == 401
    assert c.post("/admin/studies", data={"title": "x"}).status_code == 401
    # a forged session cookie is not a session
    c.cookies.set("colorlab_admin", "eyJ2IjoiYSJ9.forged.sig", path="/admin")
    assert c.get("/admin").status_code == 401


def test_login_password_and_csrf(sqlite_client) -> None:
    app_client = sqlite_client
    c = app_client
    page = c.get("/admin/login")
    token = csrf_of(page.text)
    assert "colorlab_admin" not in c.cookies
    # missing or wrong CSRF token on the login form
    assert c.post("/admin/login", data={"password": ADMIN_PASSWORD}).status_code == 403
    assert c.post("/admin/login", data={"password": ADMIN_PASSWORD, "csrf_token": "nope"}).status_code == 403
    # non-ASCII, which hmac.compare_digest refuses on str (a 500 once)
    assert c.post("/admin/login", data={"password": ADMIN_PASSWORD, "csrf_token": "é"}).status_code == 403
    bad = c.post("/admin/login", data={"password": "wrong", "csrf_token": token})
    assert bad.status_code == 401 and "Wrong password" in bad.text
    ok = c.post(
        "/admin/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": token, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/admin"  # no open redirect
    index = c.get("/admin")
    assert index.status_code == 200 and "User studies" in index.text
    # forms need the session's CSRF token
    assert c.post("/admin/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert c.post("/admin/logout", data={"csrf_token": "wröng"}).status_code == 403
    assert (
        c.post("/admin/logout", data={"csrf_token": csrf_of(index.text)}, follow_redirects=False).status_code
        == 303
    )
    c.cookies.delete("colorlab_admin", path="/admin")
    assert c.get("/admin").status_code == 401


def test_a_browser_gets_pages_not_json_when_a_form_is_refused(sqlite_client) -> None:
    """Forms posted by a browser (Accept: text/html) after the session ended or with an expired token come
    back as pages that say what to do; a script still gets JSON."""
    c = sqlite_client
    html = {"accept": "text/html", "referer": "http://testserver/admin/studies/new"}
    # logged out meanwhile: to the login page, which says the form was not saved, then back to the form
    res = c.post("/admin/studies", data={"title": "x"}, headers=html, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/admin/login?next=%2Fadmin%2Fstudies%2Fnew&expired=1"
    page = c.get(res.headers["location"])
    assert "Your session had ended" in page.text and 'name="next" value="/admin/studies/new"' in page.text
    # the login form's token expired (cookie gone): the form again with a fresh token, not a JSON body
    expired = c.post("/admin/login", data={"password": ADMIN_PASSWORD, "csrf_token": "old"}, headers=html)
    assert expired.status_code == 403 and "text/html" in expired.headers["content-type"]
    assert "The login form had expired" in expired.text
    again = c.post("/admin/login", data={"password": ADMIN_PASSWORD, "csrf_token": csrf_of(expired.text)})
    assert again.status_code == 200 and "User studies" in again.text
    # logged in, a stale form token: a page with the reason and a way back
    stale = c.post("/admin/logout", data={"csrf_token": "stale"}, headers=html)
    assert stale.status_code == 403 and "text/html" in stale.headers["content-type"]
    assert (
        "This form has expired" in stale.text and 'href="/admin/studies/new">Back to the page' in stale.text
    )
    assert c.post("/admin/logout", data={"csrf_token": "stale"}).json()["detail"].startswith("this form")
    # an unknown address: the 404 page, not {"detail": "Not Found"}
    missing = c.get("/no/such/page", headers=html)
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert c.get("/no/such/page").json() == {"detail": "Not Found"}


def test_password_hashing() -> None:
    from backend.auth import hash_password, verify_password

    stored = hash_password("s3cret-pass")
    assert stored.startswith("scrypt$") and "s3cret-pass" not in stored
    assert verify_password("s3cret-pass", stored) and not verify_password("s3cret-pasS", stored)
    assert not verify_password("x", "garbage") and not verify_password("x", "scrypt$1$2$3$!!$!!")


def _zip_of(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in photo_paths(n):
            z.writestr(f"photos/{p.name}", p.read_bytes())
        z.writestr("__MACOSX/._junk.jpg", b"junk")
        z.writestr("readme.txt", b"not a photo")
    return buf.getvalue()


def test_builder_on_the_web_and_open_only_when_ready(sqlite_client, monkeypatch) -> None:
    app_client = sqlite_client
    from backend.study import builder
    from tests.backend.study.conftest import finish_jobs

    c = app_client
    login(c)
    new = c.get("/admin/studies/new")
    assert new.status_code == 200 and 'name="methods"' in new.text
    # an unavailable method says how to install it, the command as code (not raw backquotes)
    assert "`colorlab" not in new.text
    if not method_available("eccv16"):
        assert "<code>colorlab weights fetch eccv16</code>" in new.text
    token = csrf_of(new.text)
    form = {
        "csrf_token": token,
        "title": "Web study",
        "slug": "web-study",
        "methods": ["cnn", "fusion"],
        "trials_part1": "5",
        "trials_part2": "5",
        "completion_code": "ABC",
        "attention_checks": "on",
    }
    # the methods' weights are not needed to queue the jobs in this test
    real_validate = builder.validate_spec
    monkeypatch.setattr(
        builder,
        "validate_spec",
        lambda spec, settings, check_available=True: real_validate(spec, settings, check_available=False),
    )
    res = c.post(
        "/admin/studies",
        data={**form, "csrf_token": "bad"},
        files={"archive": ("p.zip", _zip_of(6), "application/zip")},
    )
    assert res.status_code == 403
    too_few = c.post("/admin/studies", data=form, files={"archive": ("p.zip", _zip_of(3), "application/zip")})
    assert too_few.status_code == 422 and "at least 5 photos" in too_few.text
    # without the page's script the browser drops chosen files: the page says to choose them again
    assert "choose the photos again" in too_few.text
    untitled = c.post("/admin/studies", data={**form, "title": ""})
    assert untitled.status_code == 422 and "choose the photos again" not in untitled.text
    not_zip = c.post("/admin/studies", data=form, files={"archive": ("p.zip", b"nope", "application/zip")})
    assert not_zip.status_code == 400 and "not a valid zip" in not_zip.text
    res = c.post(
        "/admin/studies",
        data=form,
        files={"archive": ("p.zip", _zip_of(6), "application/zip")},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"] == "/admin/studies/web-study"
    # the form calls the slug "Address", and so do its refusals
    taken = c.post("/admin/studies", data=form, files={"archive": ("p.zip", _zip_of(6), "application/zip")})
    assert taken.status_code == 409 and "the address (slug) &#39;web-study&#39; is already used" in taken.text
    bad = c.post("/admin/studies", data={**form, "slug": "A b"})
    assert bad.status_code == 422 and "the address (slug) must be 3-64 characters" in bad.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.status == "queued")) == 12
    page = c.get("/admin/studies/web-study")
    assert page.status_code == 200 and "6 of 18 stimuli are ready" in page.text
    refused = c.post("/admin/studies/web-study/open", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 409 and "cannot open yet" in refused.text and "queued" in refused.text
    assert c.get("/study/web-study").status_code == 409
    with session_scope() as s:
        finish_jobs(s, builder.get_study(s, "web-study"))
    opened = c.post(
        "/admin/studies/web-study/open", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert opened.status_code == 303
    assert c.get("/study/web-study").status_code == 200
    assert c.post("/admin/studies/web-study/close", data={"csrf_token": "bad"}).status_code == 403


def test_results_page_and_exports(app_client, make_study) -> None:
    c = app_client
    slug = make_study(photos=6, methods=("cnn", "fusion"), attention=True)
    # three participants with formula-like ids ("=" is not allowed in ids); answers: always "real", 4 stars
    for pid in ("-5", "@evil", "+1-2"):
        c.cookies.clear()
        assert c.post(f"/study/{slug}/api/start", json={"participant": pid}).status_code == 200
        state = c.post(f"/study/{slug}/api/begin", json={}).json()
        while state["phase"] in ("part1", "part2"):
            t = state["trial"]
            body = {"trial_id": t["id"], "response_ms": 1500}
            body.update({"response": "real"} if t["part"] == 1 else {"rating": 4})
            state = c.post(f"/study/{slug}/api/answer", json=body).json()
    c.cookies.clear()
    login(c)
    page = c.get(f"/admin/studies/{slug}")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 2 and "Judged a real photo" in page.text
    assert "Per-photo breakdown (6 photos)" in page.text
    # condition against condition: three pairs; everyone answered alike, so nothing differs
    assert (
        'id="comparisons"' in page.text and page.text.count('<th scope="row" class="pair">Real photo − ') == 2
    )
    assert (
        '<th scope="row" class="pair">cnn − fusion</th>' in page.text and "differs</strong>" not in page.text
    )
    # ... and no interval: answers all alike leave no spread to estimate one from
    assert "+0.0 pts" in page.text and "+0.0 to +0.0" not in page.text
    assert c.get(f"/admin/studies/{slug}/results").status_code == 200

    res = c.get(f"/admin/studies/{slug}/export/trials.csv")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert len(rows) == 3 * 12
    assert {r["external_id"] for r in rows} == {"'-5", "'@evil", "'+1-2"}
    assert {r["part"] for r in rows} == {"1", "2"} and {r["attention"] for r in rows} == {"true", "false"}
    real_part1 = [r for r in rows if r["part"] == "1" and r["condition"] == "real"]
    assert real_part1 and all(r["correct"] == "true" and r["method"] == "" for r in real_part1)
    cnn = [r for r in rows if r["condition"] == "cnn"]
    assert all(r["method"] == "cnn" for r in cnn)
    assert all(r["response_ms"] == "1500" and r["shown_at"] and r["answered_at"] for r in rows)
    # attention: part 1 answered "real" to the gray image, so every participant failed it
    assert {r["attention_passed"] for r in rows if r["attention"] == "true" and r["part"] == "1"} == {"false"}

    parts = list(csv.DictReader(io.StringIO(c.get(f"/admin/studies/{slug}/export/participants.csv").text)))
    assert len(parts) == 3 and all(p["answers"] == "12" and p["attention_failed"] == "true" for p in parts)
    stims = list(csv.DictReader(io.StringIO(c.get(f"/admin/studies/{slug}/export/stimuli.csv").text)))
    assert len(stims) == 6 * 4 and {s["condition"] for s in stims} == {"real", "cnn", "fusion", "attention"}
    summary = list(csv.DictReader(io.StringIO(c.get(f"/admin/studies/{slug}/export/summary.csv").text)))
    assert [s["condition"] for s in summary] == ["real", "cnn", "fusion"]
    assert sum(int(s["part1_n"]) for s in summary) == 15 and all(s["share_real"] == "1.0" for s in summary)
    assert all(s["failed_attention_excluded"] == "false" for s in summary)
    assert sum(int(s[f"stars_{k}"]) for s in summary for k in range(1, 5)) == sum(
        int(s["part2_n"]) for s in summary
    )
    pairs = list(csv.DictReader(io.StringIO(c.get(f"/admin/studies/{slug}/export/comparisons.csv").text)))
    assert [(r["condition_a"], r["condition_b"]) for r in pairs] == [
        ("real", "cnn"),
        ("real", "fusion"),
        ("cnn", "fusion"),
    ]
    assert all(r["share_real_difference"] == "0.0" and r["rating_differs"] == "false" for r in pairs)
    # The results page's "exclude failed attention checks" view exports as shown (here everyone failed one).
    assert (
        f"/admin/studies/{slug}/export/summary.csv?exclude=true"
        in c.get(f"/admin/studies/{slug}?exclude=true").text
    )
    passed = c.get(f"/admin/studies/{slug}/export/summary.csv?exclude=true")
    assert f'{slug}-summary-passed-attention.csv"' in passed.headers["content-disposition"]
    rows_passed = list(csv.DictReader(io.StringIO(passed.text)))
    assert all(s["part1_n"] == "0" and s["failed_attention_excluded"] == "true" for s in rows_passed)
    assert (
        c.get(f"/admin/studies/{slug}/export/summary.json?exclude=true").json()["participants"]["excluded"]
        == 3
    )

    trials_json = c.get(f"/admin/studies/{slug}/export/trials.json").json()
    assert len(trials_json) == 36 and trials_json[0]["external_id"] in {"-5", "@evil", "+1-2"}
    summary_json = c.get(f"/admin/studies/{slug}/export/summary.json").json()
    assert summary_json["participants"]["completed"] == 3
    assert json.loads(c.get(f"/admin/studies/{slug}/export/stimuli.json").text)[0]["study"] == slug
    assert c.get(f"/admin/studies/{slug}/export/bogus.csv").status_code == 404
    assert c.get(f"/admin/studies/{slug}/export/trials.xlsx").status_code == 404
    assert c.get("/admin/studies/nope/export/trials.csv").status_code == 404

    # The participants table says who failed an attention check (the exports did; the page only counted).
    outcome = '<td class="attention-outcome">{}</td>'
    page = c.get(f"/admin/studies/{slug}").text
    assert "<th>Attention checks</th>" in page and page.count(outcome.format("<strong>failed</strong>")) == 3
    with session_scope() as s:  # "+1-2" answers every check as expected
        pid = s.scalar(select(Participant.id).where(Participant.external_id == "+1-2"))
        for t in s.scalars(select(Trial).where(Trial.participant_id == pid, Trial.is_attention.is_(True))):
            t.response, t.rating = (t.expected, None) if t.part == 1 else (None, int(t.expected or 0))
    page = c.get(f"/admin/studies/{slug}").text
    assert page.count(outcome.format("<strong>failed</strong>")) == 2
    assert page.count(outcome.format("passed")) == 1


def test_neutralise() -> None:
    from backend.study.export import neutralise

    assert [neutralise(v) for v in ["=1+1", "+1", "-1", "@x", "\tx", "ok", 5, None, -3]] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "ok",
        5,
        None,
        -3,
    ]


def test_deleting_a_study_removes_what_only_it_used(app_client, make_study) -> None:
    from backend.models import Image
    from backend.study.models import Participant, Stimulus, Study, StudyPhoto, StudyTexts, Trial

    c = app_client
    slug = make_study(photos=4, methods=("cnn",), trials=(3, 3))
    assert c.post(f"/study/{slug}/api/start", json={"participant": "p1"}).status_code == 200
    state = c.post(f"/study/{slug}/api/begin", json={}).json()
    t = state["trial"]
    assert (
        c.post(f"/study/{slug}/api/answer", json={"trial_id": t["id"], "response": "real"}).status_code == 200
    )
    c.cookies.clear()
    # Someone colorizes one of the study's photos on the site: the stored image is shared, and must stay.
    shared = photo_paths(4)[0]
    mine = c.post("/colorize", files={"image": (shared.name, shared.read_bytes(), "image/jpeg")}).json()["id"]

    with session_scope() as s:
        sid = s.scalars(select(Study.id).where(Study.slug == slug)).one()

    def rows() -> dict[str, int]:
        with session_scope() as s:
            study = s.get(Study, sid)
            counted = {
                t.__tablename__: s.scalar(select(func.count()).select_from(t).where(t.study_id == sid)) or 0
                for t in (StudyTexts, StudyPhoto, Stimulus, Participant, Trial)
            }
            counted["studies"] = int(study is not None)
            counted["images"] = s.scalar(select(func.count()).select_from(Image)) or 0
            counted["jobs"] = s.scalar(select(func.count()).select_from(Job)) or 0
            return counted

    login(c)
    before = rows()
    assert before["study_participants"] == 1 and before["study_trials"] == 6 and before["study_stimuli"] == 8
    page = c.get(f"/admin/studies/{slug}")
    assert "Close the study to delete it." in page.text and 'id="delete-study"' not in page.text
    r = c.post(f"/admin/studies/{slug}/delete", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 409 and "close the study" in r.text  # open: refused, nothing changed
    assert rows() == before
    closed = c.post(
        f"/admin/studies/{slug}/close", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert closed.status_code == 303
    page = c.get(f"/admin/studies/{slug}")
    assert 'id="delete-study"' in page.text and "its 1 participant(s)" in page.text
    assert c.post(f"/admin/studies/{slug}/delete", data={"csrf_token": "forged"}).status_code == 403
    assert rows() == before
    # p1 was answering when it closed: its answers may still come in for STUDY_CLOSE_GRACE_MINUTES
    r = c.post(f"/admin/studies/{slug}/delete", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 409 and "1 participant(s) were answering when the study closed" in r.text
    assert rows() == before
    with session_scope() as s:
        study = s.get(Study, sid)
        grace = get_settings().study_close_grace_minutes
        study.closed_at = study.closed_at - timedelta(minutes=grace + 1)  # type: ignore[operator]
        s.commit()

    r = c.post(
        f"/admin/studies/{slug}/delete", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/admin?deleted={slug}"
    assert f"The study <code>{slug}</code> was deleted" in c.get(r.headers["location"]).text
    assert "was deleted" not in c.get("/admin?deleted=main-study").text  # only the study this browser deleted
    assert c.get(f"/admin/studies/{slug}").status_code == 404
    after = rows()
    assert {k: v for k, v in after.items() if k.startswith("stud")} == {
        "study_text_versions": 0, "study_photos": 0, "study_stimuli": 0, "study_participants": 0,
        "study_trials": 0, "studies": 0,
    }  # fmt: skip
    assert after["jobs"] == before["jobs"] - 4  # the study's colorizations; the user's own job stays
    # 4 photos: colour + gray each, 8 display copies, 4 results; the shared colour photo stays
    assert after["images"] == before["images"] - (4 * 2 + 8 + 4 - 1), (before, after)
    assert c.get(f"/jobs/{mine}").status_code == 200
    assert c.get(f"/jobs/{mine}/input.png").status_code == 200


def test_a_study_may_bring_more_photos_than_two_uploads(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The study builder's request body may be as large as a batch's (BATCH_MAX_BYTES), not two photos'."""
    from fastapi.testclient import TestClient

    from backend.main import create_app
    from tests.conftest import apply_settings, migrate, photo_bytes

    apply_settings(
        monkeypatch, DATA_DIR=tmp_path / "var", MAX_UPLOAD_BYTES=100_000, BATCH_MAX_BYTES=2_000_000
    )
    migrate()
    with TestClient(create_app()) as c:
        login(c)
        page = c.get("/admin/studies/new").text
        assert "Each photo up to 0.1 MB, 2 MB in all" in page  # the settings' limits, told before upload
        token = csrf_of(page)
        body = {"csrf_token": token, "title": "Big", "methods": ["cnn"]}
        jpeg = photo_bytes()
        over_two, over_batch = 1_300_000 // len(jpeg) + 1, 3_200_000 // len(jpeg) + 1

        def photos(n: int) -> list[tuple[str, tuple[str, bytes, str]]]:
            return [("photos", (f"{i}.jpg", jpeg, "image/jpeg")) for i in range(n)]

        # over two uploads' 1.2 MB, under the batch limit (3.1 MB): read, then judged on its content
        read = c.post("/admin/studies", data=body, files=photos(over_two))
        assert read.status_code == 422 and "is the same photo as an earlier one" in read.text
        huge = c.post("/admin/studies", data=body, files=photos(over_batch))
        assert huge.status_code == 413 and "3,100,000-byte limit" in huge.text
