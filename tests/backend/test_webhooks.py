"""Webhooks: a job's or a batch's URL is called once it has finished, signed per Standard Webhooks, retried
when the receiver fails, never lost (an outbox in the job's own transaction) and never sent twice at once —
against a real HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from standardwebhooks import Webhook

from backend import job_lifecycle as lifecycle
from backend import webhooks
from backend.config import get_settings
from backend.db import session_scope
from backend.errors import UserError
from backend.models import Batch, Job, WebhookDelivery, utcnow
from tests.backend.test_api import png
from tests.conftest import Receiver, apply_settings
from worker.runner import Runner

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes....").decode()


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """Standard Webhooks' signature, computed here from the spec (not with the code under test)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def deliver(now_offset: float = 0.0) -> int:
    return webhooks.deliver_due(get_settings(), now=utcnow() + timedelta(seconds=now_offset))


def deliveries() -> list[WebhookDelivery]:
    with session_scope() as s:
        rows = list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))
        s.expunge_all()
        return rows


def test_the_signature_is_standard_webhooks(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # the example of the Standard Webhooks specification
    apply_settings(monkeypatch, DATA_DIR=tmp_path, WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    key = get_settings().webhook_key
    assert key is not None
    got = webhooks.signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("secret", ["not base64!", "whsec_c2hvcnQ=", "c2hvcnQ", "a" * 200])
def test_a_secret_receivers_could_not_use_stops_the_server_from_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, secret: str
) -> None:
    with pytest.raises(ValueError, match="WEBHOOK_SECRET must be 24 to 64 random bytes in base64"):
        apply_settings(monkeypatch, DATA_DIR=tmp_path, WEBHOOK_SECRET=secret)
        get_settings()
    apply_settings(monkeypatch, DATA_DIR=tmp_path, WEBHOOK_SECRET=SECRET.removeprefix("whsec_"))
    assert get_settings().webhook_key == b"a secret of thirty-two bytes...."  # the prefix is optional


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.org/hook", "http:// or https://"),
        ("example.org/hook", "http:// or https://"),
        ("https://", "http:// or https://"),
        ("https://exa mple.org/", "spaces"),
        ("https://example.org/\x00", "control"),
        ("https://user:pw@example.org/", "password"),
        ("https://example.org:99999/", "port"),
        ("https://example.org/" + "a" * 2100, "at most 2,048"),
        ("https://example.org/" + "\u00e9" * 1500, "once encoded"),  # 9,020 characters: a 500 on PostgreSQL
        ("http://[::1/hook", "not a URL"),  # urlsplit's ValueError, once a 500
        ("http://a]b/", "not a URL"),
        ("https://bad\u2028host.example/", "control"),
        ("https://" + "\u00e9" * 70 + ".example/", "not a valid domain name"),
    ],
)
def test_a_webhook_that_cannot_be_called_is_refused_and_nothing_is_stored(
    client: TestClient, url: str, says: str
) -> None:
    r = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}, data={"webhook": url})
    assert r.status_code == 422 and says in r.json()["detail"], r.text
    r = client.post("/batches", files=[("images", ("a.png", png(), "image/png"))], data={"webhook": url})
    assert r.status_code == 422 and says in r.json()["detail"], r.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
        assert s.scalar(select(func.count()).select_from(Batch)) == 0


def test_private_addresses_only_where_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    apply_settings(monkeypatch, DATA_DIR=tmp_path, WEBHOOK_ALLOW_PRIVATE="false")
    settings = get_settings()
    for url in (
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://api.localhost/",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://169.254.169.254/latest/",
        # the resolver's other spellings of 127.0.0.1, and a trailing dot
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://017700000001/",
        "http://localhost./",
        # IPv6 addresses that carry a private IPv4 one through a gateway (NAT64, 6to4, old forms)
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b:1::a00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[::7f00:1]/",
        "http://[::ffff:0:a00:1]/",
        "http://[fec0::1]/",
    ):
        with pytest.raises(UserError, match="not a public address"):
            webhooks.check_url(url, settings)
    assert (
        webhooks.check_url(" https://hooks.example.org/x?y=1 ", settings) == "https://hooks.example.org/x?y=1"
    )
    assert webhooks.check_url("http://[64:ff9b::808:808]/", settings)  # NAT64 to a public address
    # an IRI is kept as the URL it stands for (IDNA host, UTF-8 percent-encoded path and query)
    iri = "https://b\u00fccher.example:8443/ho\u00f6k/%41?q=\u00e9&x=1#frag"
    assert (
        webhooks.check_url(iri, settings) == "https://xn--bcher-kva.example:8443/ho%C3%B6k/%41?q=%C3%A9&x=1"
    )
    # a name is checked where it is called: one that resolves to a private address gets no call
    answer = webhooks.post("http://localhost:9/", b"{}", {}, timeout=2, reach_private=False)
    assert answer.status is None and "non-public" in (answer.error or "")
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE")
    apply_settings(monkeypatch, DATA_DIR=tmp_path)  # development: an archive's own LAN server is fine
    assert webhooks.check_url("http://10.1.2.3/hook", get_settings()) == "http://10.1.2.3/hook"


def test_production_needs_a_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    production = {"ENVIRONMENT": "production", "SECRET_KEY": "k" * 40, "ADMIN_PASSWORD": "x" * 12}
    apply_settings(monkeypatch, DATA_DIR=tmp_path, **production)
    with pytest.raises(UserError, match="WEBHOOK_SECRET"):
        webhooks.check_url("https://hooks.example.org/", get_settings())
    apply_settings(monkeypatch, DATA_DIR=tmp_path, WEBHOOK_SECRET=SECRET, **production)
    with pytest.raises(ValueError, match="needs PUBLIC_URL"):  # its calls' links must reach this server
        get_settings()
    production["PUBLIC_URL"] = "https://colorlab.example.org"
    apply_settings(monkeypatch, DATA_DIR=tmp_path, WEBHOOK_SECRET=SECRET, **production)
    assert webhooks.check_url("https://hooks.example.org/", get_settings())
    with pytest.raises(UserError, match="not a public address"):  # and no private addresses by default
        webhooks.check_url("http://192.168.1.5/", get_settings())


def test_a_finished_job_calls_its_webhook_once_signed(
    client: TestClient, runner: Runner, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    r = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"webhook": receiver.url}
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert client.get(f"/jobs/{job_id}").json()["webhook"] == {
        "url": receiver.url,
        "state": "waiting",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
        "next_attempt_at": None,
        "delivered_at": None,
    }
    assert deliver() == 0 and receiver.calls == []  # nothing owed before it finishes
    assert runner.run(job_id) == "done"
    assert deliver() == 1 and deliver() == 0  # once
    [call] = receiver.calls
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert call["path"] == "/hooks/colorlab?token=t0k"
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"] == expected_signature(SECRET, headers, call["body"])
    # and as a receiver checks it, with Standard Webhooks' own library
    assert Webhook(SECRET).verify(call["body"], headers)["data"]["id"] == job_id
    [delivery] = deliveries()
    assert headers["webhook-id"] == delivery.id
    body = json.loads(call["body"])
    assert body["type"] == "job.finished" and body["url"].endswith(f"/jobs/{job_id}")
    assert body["data"]["id"] == job_id and body["data"]["status"] == "done"
    base = get_settings().public_url  # links a receiver elsewhere fetches as they are
    assert body["data"]["urls"]["result"] == f"{base}/jobs/{job_id}/result.png"
    assert body["url"] == f"{base}/jobs/{job_id}"
    hook = client.get(f"/jobs/{job_id}").json()["webhook"]
    assert hook["state"] == "delivered" and hook["attempts"] == 1 and hook["last_status"] == 200
    assert hook["delivered_at"] is not None


def test_a_failing_receiver_is_retried_then_given_up(client: TestClient, receiver: Receiver) -> None:
    first = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"webhook": receiver.url}
    )
    job_id = first.json()["id"]
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 200  # cancelled: a call too
    receiver.statuses = [500, 503]
    assert deliver() == 1
    hook = client.get(f"/jobs/{job_id}").json()["webhook"]
    assert hook["state"] == "pending" and hook["last_status"] == 500 and hook["last_error"] == "answered 500"
    assert deliver() == 0  # not due yet: after RETRY_AFTER_SECONDS[0]
    assert deliver(webhooks.RETRY_AFTER_SECONDS[0] + 1) == 1
    assert deliver(webhooks.RETRY_AFTER_SECONDS[1] + 1) == 1
    hook = client.get(f"/jobs/{job_id}").json()["webhook"]
    assert hook["state"] == "delivered" and hook["attempts"] == 3
    assert [b["data"]["status"] for b in receiver.bodies()] == ["cancelled"] * 3
    ids = {c["headers"]["webhook-id"] for c in receiver.calls}
    assert len(ids) == 1  # one call, three attempts: the receiver can de-duplicate
    assert "webhook-signature" not in receiver.calls[0]["headers"]  # development, no secret: unsigned

    # a receiver that is down for good: MAX_ATTEMPTS, then failed; 410 Gone: failed at once
    second = client.post(
        "/colorize", files={"image": ("b.png", png(), "image/png")}, data={"webhook": receiver.url}
    )
    client.post(f"/jobs/{second.json()['id']}/cancel")
    with session_scope() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.job_id == second.json()["id"])
            .values(attempts=webhooks.MAX_ATTEMPTS - 1)
        )
    receiver.statuses = [500]
    assert deliver() == 1
    hook = client.get(f"/jobs/{second.json()['id']}").json()["webhook"]
    assert hook["state"] == "failed" and hook["attempts"] == webhooks.MAX_ATTEMPTS
    third = client.post(
        "/colorize", files={"image": ("c.png", png(), "image/png")}, data={"webhook": receiver.url}
    )
    client.post(f"/jobs/{third.json()['id']}/cancel")
    receiver.statuses = [410]
    assert deliver() == 1
    assert client.get(f"/jobs/{third.json()['id']}").json()["webhook"]["state"] == "failed"
    assert deliver(10**6) == 0  # nothing left to call, however long we wait


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.statuses = [302]
    answer = webhooks.post(receiver.url, b"{}", {}, timeout=5, reach_private=True)
    assert answer.status == 302 and "not followed" in (answer.error or "")
    assert len(receiver.calls) == 1


def test_a_batch_calls_once_when_its_last_photo_has_finished(
    client: TestClient, runner: Runner, receiver: Receiver
) -> None:
    r = client.post(
        "/batches",
        files=[("images", ("a.png", png(), "image/png")), ("images", ("b.png", png((64, 40)), "image/png"))],
        data={"webhook": receiver.url},
    )
    assert r.status_code == 202, r.text
    batch_id = r.json()["id"]
    first, second = [item["job_id"] for item in client.get(f"/batches/{batch_id}").json()["items"]]
    assert client.get(f"/jobs/{first}").json()["webhook"] is None  # a batch's photos: one call, the batch's
    client.post(f"/jobs/{first}/cancel")  # cancelled: one of two finished
    assert deliver() == 0
    assert client.get(f"/batches/{batch_id}").json()["webhook"]["state"] == "waiting"
    assert runner.run(second) == "done"
    assert deliver() == 1
    [body] = receiver.bodies()
    assert body["type"] == "batch.finished" and body["data"]["id"] == batch_id and body["data"]["finished"]
    assert body["data"]["counts"] == {"cancelled": 1, "done": 1}
    links = [*body["data"]["urls"].values(), *(u for i in body["data"]["items"] for u in i["urls"].values())]
    assert all(link.startswith("http") for link in links if link), links  # absolute: fetched as they are
    assert client.get(f"/batches/{batch_id}").json()["webhook"]["state"] == "delivered"
    with session_scope() as s:  # sweeps find nothing more to owe
        lifecycle.sweep(s, get_settings())
    assert deliver() == 0 and len(receiver.calls) == 1


def test_a_sweep_owes_the_call_of_a_batch_two_workers_finished_at_once(
    client: TestClient, receiver: Receiver
) -> None:
    r = client.post(
        "/batches",
        files=[("images", ("a.png", png(), "image/png")), ("images", ("b.png", png((64, 40)), "image/png"))],
        data={"webhook": receiver.url},
    )
    batch_id = r.json()["id"]
    with session_scope() as s:  # as if each worker had seen the other's photo still running
        s.execute(update(Job).where(Job.batch_id == batch_id).values(status="done", finished_at=utcnow()))
    assert deliver() == 0
    with session_scope() as s:
        lifecycle.sweep(s, get_settings())
    with session_scope() as s:
        lifecycle.sweep(s, get_settings())  # a second sweep owes nothing more
    assert deliver() == 1 and [b["type"] for b in receiver.bodies()] == ["batch.finished"]


def test_deleting_a_job_drops_the_call_it_owed(client: TestClient, receiver: Receiver) -> None:
    job_id = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"webhook": receiver.url}
    ).json()["id"]
    client.post(f"/jobs/{job_id}/cancel")  # cancel: a call is owed
    assert len(deliveries()) == 1
    assert client.delete(f"/jobs/{job_id}").status_code == 204  # delete: and with it the call
    assert deliveries() == [] and deliver() == 0 and receiver.calls == []


def test_a_rerun_takes_its_own_webhook_and_a_comparison_none(client: TestClient, receiver: Receiver) -> None:
    job_id = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}).json()["id"]
    assert client.get(f"/jobs/{job_id}").json()["webhook"] is None
    again = client.post(f"/jobs/{job_id}/rerun", data={"vividness": "0.8", "webhook": receiver.url})
    assert again.status_code == 202, again.text
    assert client.get(f"/jobs/{again.json()['id']}").json()["webhook"]["url"] == receiver.url
    bad = client.post(f"/jobs/{job_id}/rerun", data={"webhook": "gopher://x"})
    assert bad.status_code == 422
    r = client.post(
        "/colorize",
        files={"image": ("a.png", png(), "image/png")},
        data={"webhook": [receiver.url, receiver.url]},
    )
    assert r.status_code == 422 and "`webhook` came 2 times" in r.json()["detail"]
    r = client.post(
        "/compare", files={"image": ("a.png", png(), "image/png")}, data={"webhook": receiver.url}
    )
    assert r.status_code == 422 and "comparison takes no `webhook`" in r.json()["detail"]
    for extra in ({"options": '{"vividness": 0.3}'}, {"vividness": "0.3"}):  # once taken and ignored
        r = client.post("/compare", files={"image": ("a.png", png(), "image/png")}, data=extra)
        assert r.status_code == 422 and "with its defaults" in r.json()["detail"], r.text


def cancelled_jobs_owing_calls(client: TestClient, receiver: Receiver, count: int) -> list[str]:
    """``count`` jobs with a webhook, cancelled at once: each owes one call (no worker needed)."""
    ids = [
        client.post(
            "/colorize", files={"image": (f"{i}.png", png(), "image/png")}, data={"webhook": receiver.url}
        ).json()["id"]
        for i in range(count)
    ]
    for job_id in ids:
        client.post(f"/jobs/{job_id}/cancel")
    return ids


def test_workers_delivering_side_by_side_call_each_once(client: TestClient, receiver: Receiver) -> None:
    ids = cancelled_jobs_owing_calls(client, receiver, 12)
    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while deliver():
        pass
    assert sorted(b["data"]["id"] for b in receiver.bodies()) == sorted(ids)


def test_metrics_count_the_calls_and_say_when_none_are_being_made(
    client: TestClient, receiver: Receiver
) -> None:
    from tests.backend.test_service_metrics import scraped, value

    cancelled_jobs_owing_calls(client, receiver, 3)
    with session_scope() as s:  # owed two minutes ago and never made: no worker is calling
        s.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(minutes=2)))
    m = scraped(client.get("/metrics").text)
    assert value(m, "colorlab_webhook_calls", state="pending") == 3
    assert value(m, "colorlab_webhook_calls", state="failed") == 0
    assert 110 <= value(m, "colorlab_overdue_webhook_seconds") <= 200
    receiver.statuses = [410]
    assert deliver() == 3
    m = scraped(client.get("/metrics").text)
    assert value(m, "colorlab_webhook_calls", state="delivered") == 2
    assert value(m, "colorlab_webhook_calls", state="failed") == 1
    assert value(m, "colorlab_overdue_webhook_seconds") == 0


def trickled_call(scheme: str, first: bytes, each: bytes) -> tuple[webhooks.CallOutcome, float]:
    """A call (0.5 s per step, 1 s in all) to a receiver that sends ``first`` once it has read the request,
    then ``each`` every 0.2 s, within each read's timeout: the answer and how long the call took."""
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        try:
            conn.sendall(first)
            while not stop.wait(0.2):
                conn.sendall(each)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    url = f"{scheme}://127.0.0.1:{server.getsockname()[1]}/"
    answer = webhooks.post(url, b"{}", {}, timeout=0.5, reach_private=True)
    took = time.monotonic() - started
    stop.set()
    server.close()
    return answer, took


def test_a_receiver_that_trickles_its_answer_is_cut_off() -> None:
    """Each header line comes within the socket's timeout, so only the call's deadline ends it."""
    answer, took = trickled_call("http", b"HTTP/1.1 200 OK\r\n", b"X-Slow: 1\r\n")
    assert answer.status is None and "within 1 s" in (answer.error or ""), answer
    assert took < 3


def test_a_url_that_cannot_be_sent_fails_its_own_call_and_no_other(
    client: TestClient, receiver: Receiver
) -> None:
    """A stored URL http.client cannot send (non-ASCII, from before IRIs were encoded) is that call's failure:
    the others of its round are recorded (it once stopped the round, and every call in it was made again)."""
    ids = cancelled_jobs_owing_calls(client, receiver, 3)
    with session_scope() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.job_id == ids[0])
            .values(url=receiver.url + "/h\u00f6k")
        )
    assert deliver() == 3
    assert sorted(b["data"]["id"] for b in receiver.bodies()) == sorted(ids[1:])
    states = {d.job_id: (d.state, d.attempts, d.last_error) for d in deliveries()}
    assert states[ids[1]][0] == states[ids[2]][0] == "delivered"
    state, attempts, error = states[ids[0]]
    assert state == "pending" and attempts == 1 and "UnicodeEncodeError" in (error or "")


def test_an_outcome_is_recorded_only_while_its_claim_holds(client: TestClient, receiver: Receiver) -> None:
    """A call whose lease ran out was claimed again: the first worker's late outcome must not overwrite the
    second's claim (a stale "retry in 5 s" would start a third call)."""
    [job_id] = cancelled_jobs_owing_calls(client, receiver, 1)
    [first] = webhooks._claim_due(get_settings(), 4, utcnow())
    [second] = webhooks._claim_due(get_settings(), 4, utcnow() + timedelta(minutes=5))  # the lease ran out
    assert (first.attempt, second.attempt) == (1, 2)
    with session_scope() as s:
        webhooks._record(s, first, webhooks.CallOutcome(500, "answered 500"))
    [row] = deliveries()
    assert row.state == "pending" and row.attempts == 2 and row.last_status is None
    with session_scope() as s:
        webhooks._record(s, second, webhooks.CallOutcome(204, None))
    [row] = deliveries()
    assert row.state == "delivered" and row.job_id == job_id


def test_a_tls_handshake_trickled_is_cut_at_the_deadline() -> None:
    """A receiver trickling its TLS handshake (a 16 KB handshake record, a byte at a time) is cut off too."""
    answer, took = trickled_call("https", b"\x16\x03\x03\x40\x00", b"\x00")
    error = answer.error or ""
    assert answer.status is None and ("within 1 s" in error or "handshake" in error), answer
    assert took < 3


def test_a_deadline_reached_before_there_is_a_socket_stops_the_call_once_connected() -> None:
    """The watchdog may fire while the connection is being made (no socket to shut yet): the call then stops
    as soon as it has one, instead of reading an answer with only each read's timeout to bound it."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    for scheme in ("http", "https"):
        conn = webhooks._connection(scheme, "127.0.0.1", port, "127.0.0.1", 5)
        webhooks._cut(conn)  # the deadline, before connect() ran
        with pytest.raises(TimeoutError, match="deadline"):
            conn.request("POST", "/", body=b"{}")
        conn.close()
    server.close()


def test_the_logs_never_show_a_webhook_urls_token(
    client: TestClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """README asks for a token in the URL's path or query: a failed call's log line names the host only."""
    url = receiver.url.rstrip("/") + "/hooks/s3cret-path?token=s3cret-query"
    job_id = client.post(
        "/colorize", files={"image": ("a.png", png(), "image/png")}, data={"webhook": url}
    ).json()["id"]
    client.post(f"/jobs/{job_id}/cancel")  # a call is owed
    receiver.statuses = [500]
    with caplog.at_level("INFO", logger="colorlab.webhooks"):
        assert deliver() == 1
    assert "answered 500" in caplog.text and "127.0.0.1" in caplog.text
    assert "s3cret" not in caplog.text
