"""Each patched client, against real local sinks: blocked during mirrored work, untouched
outside it, allowed hosts pass, and redirects are checked hop by hop."""

from __future__ import annotations

import asyncio
import http.client
import logging
import smtplib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import aiohttp
import httpx
import kombu.exceptions
import pytest
import requests
import urllib3
from celery import Celery

from shadowtap.guard import SideEffectBlocked
from tests.sinks import HTTPSink, SMTPSink

from .conftest import make_guard, mirrored

Answer = tuple[int, bytes, str | None]  # status, body, X-Shadowtap-Guard


def _httpx(url: str) -> Answer:
    with httpx.Client(follow_redirects=True) as client:
        r = client.post(url, content=b"charge")
    return r.status_code, r.content, r.headers.get("x-shadowtap-guard")


def _httpx_async(url: str) -> Answer:
    async def go() -> Answer:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            r = await client.post(url, content=b"charge")
        return r.status_code, r.content, r.headers.get("x-shadowtap-guard")

    return asyncio.run(go())


def _requests(url: str) -> Answer:
    r = requests.post(url, data=b"charge", timeout=5)
    return r.status_code, r.content, r.headers.get("x-shadowtap-guard")


def _urllib3(url: str) -> Answer:
    r = urllib3.PoolManager().request("POST", url, body=b"charge")
    return r.status, r.data, r.headers.get("x-shadowtap-guard")


def _aiohttp(url: str) -> Answer:
    async def go() -> Answer:
        async with aiohttp.ClientSession() as session, session.post(url, data=b"hook") as r:
            return r.status, await r.read(), r.headers.get("x-shadowtap-guard")

    return asyncio.run(go())


def _urllib(url: str) -> Answer:
    with urllib.request.urlopen(urllib.request.Request(url, b"charge", method="POST")) as r:
        return r.status, r.read(), r.headers.get("x-shadowtap-guard")


def _http_client(url: str) -> Answer:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    try:
        conn.request("POST", parts.path, body=b"charge")
        r = conn.getresponse()
        return r.status, r.read(), r.headers.get("x-shadowtap-guard")
    finally:
        conn.close()


# client: (call, the library's own error the block must also be)
CLIENTS: dict[str, tuple[Callable[[str], Answer], type[BaseException]]] = {
    "httpx": (_httpx, httpx.ConnectError),
    "httpx-async": (_httpx_async, httpx.ConnectError),
    "requests": (_requests, requests.ConnectionError),
    "urllib3": (_urllib3, urllib3.exceptions.HTTPError),
    "aiohttp": (_aiohttp, aiohttp.ClientConnectionError),
    "urllib": (_urllib, urllib.error.URLError),
    "http.client": (_http_client, ConnectionRefusedError),
}
CAN_RESPOND = set(CLIENTS) - {"http.client"}


def _case() -> str:
    return uuid.uuid4().hex[:12]


@pytest.mark.parametrize("client", list(CLIENTS))
def test_outside_mirrored_requests_every_call_arrives(client: str, http_sink: HTTPSink) -> None:
    make_guard()
    case = _case()
    call, _ = CLIENTS[client]
    status, body, marked = call(f"{http_sink.url}/pay/{case}")
    assert (status, body, marked) == (200, b'{"ok": true}', None)
    assert http_sink.matching(case) == [f"POST /pay/{case}"]


@pytest.mark.parametrize("client", list(CLIENTS))
def test_mirrored_calls_raise_the_libraries_own_error_and_never_arrive(
    client: str, http_sink: HTTPSink, caplog: pytest.LogCaptureFixture
) -> None:
    guard = make_guard()
    case = _case()
    call, library_error = CLIENTS[client]
    with (
        caplog.at_level(logging.INFO, "shadowtap.guard"),
        mirrored(guard, f"rid-{case}"),
        pytest.raises(SideEffectBlocked) as info,
    ):
        call(f"{http_sink.url}/pay/{case}?card=4111")
    assert isinstance(info.value, library_error)
    assert info.value.request_id == f"rid-{case}"
    assert "not on guard.allow_hosts" in str(info.value)
    assert http_sink.matching(case) == []
    assert guard.metrics.blocked("http", "raise") == 1
    logged = [r.getMessage() for r in caplog.records if f"rid-{case}" in r.getMessage()]
    assert len(logged) == 1
    assert "4111" not in logged[0]  # query strings are not logged


@pytest.mark.parametrize("client", sorted(CAN_RESPOND))
def test_mirrored_calls_can_get_a_canned_answer(client: str, http_sink: HTTPSink) -> None:
    guard = make_guard(on_block="respond", respond_status=202, respond_body='{"id": "ch_test"}')
    case = _case()
    call, _ = CLIENTS[client]
    with mirrored(guard):
        assert call(f"{http_sink.url}/pay/{case}") == (202, b'{"id": "ch_test"}', "blocked")
    assert http_sink.matching(case) == []
    assert guard.metrics.blocked("http", "respond") == 1


def test_http_client_has_no_answer_to_can_so_it_raises_in_respond_mode_too(
    http_sink: HTTPSink,
) -> None:
    guard = make_guard(on_block="respond")
    case = _case()
    with mirrored(guard), pytest.raises(ConnectionRefusedError):
        _http_client(f"{http_sink.url}/pay/{case}")
    assert http_sink.matching(case) == []
    assert guard.metrics.blocked("http", "raise") == 1


@pytest.mark.parametrize("client", list(CLIENTS))
def test_allowed_hosts_are_reached_from_mirrored_requests(client: str, http_sink: HTTPSink) -> None:
    guard = make_guard(allow_hosts=["search.internal", f"127.0.0.*:{http_sink.port}"])
    case = _case()
    call, _ = CLIENTS[client]
    with mirrored(guard):
        assert call(f"{http_sink.url}/search/{case}")[0] == 200
    assert http_sink.matching(case) == [f"POST /search/{case}"]
    assert guard.metrics.blocked() == 0


@pytest.mark.parametrize("client", sorted(set(CLIENTS) - {"http.client"}))
def test_a_redirect_from_an_allowed_host_to_another_is_blocked(
    client: str, http_sink: HTTPSink
) -> None:
    guard = make_guard(allow_hosts=[f"localhost:{http_sink.port}"])
    case = _case()
    call, _ = CLIENTS[client]
    start = f"http://localhost:{http_sink.port}/redirect?to={http_sink.url}/pay/{case}"
    with mirrored(guard), pytest.raises(SideEffectBlocked):
        call(start)
    assert http_sink.matching(f" /pay/{case}") == []  # the redirect line names it too
    assert len(http_sink.matching(f"/redirect?to={http_sink.url}/pay/{case}")) == 1


def _mail(smtp_sink: SMTPSink, case: str, **login: str) -> Any:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "shop@x.test", "c@x.test", case
    message.set_content("your order")
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=5) as smtp:
        smtp.ehlo()
        if login:
            smtp.starttls()
            smtp.login(**login)
        return smtp.send_message(message)


def test_smtp_is_blocked_or_answered_by_a_null_session(smtp_sink: SMTPSink) -> None:
    case = _case()
    assert _mail(smtp_sink, case) == {}
    assert len(smtp_sink.matching(case)) == 1
    guard = make_guard()
    with mirrored(guard), pytest.raises(SideEffectBlocked) as info:
        _mail(smtp_sink, case)
    assert isinstance(info.value, smtplib.SMTPException)
    canned = make_guard(on_block="respond")
    with mirrored(canned):
        assert _mail(smtp_sink, case, user="shop", password="secret") == {}
    assert len(smtp_sink.matching(case)) == 1  # still only the ordinary one
    assert (guard.metrics.blocked("smtp"), canned.metrics.blocked("smtp", "respond")) == (1, 1)
    allowing = make_guard(allow_hosts=[f"127.0.0.1:{smtp_sink.port}"])
    with mirrored(allowing):
        _mail(smtp_sink, case)
    assert len(smtp_sink.matching(case)) == 2


def test_celery_tasks_are_not_published_from_mirrored_requests() -> None:
    app = Celery(f"shop-{_case()}", broker="memory://")

    @app.task(name="charge_card")
    def charge_card(order: int) -> int:
        return order

    def queued() -> int:
        with app.connection_for_write() as conn:
            queue = conn.SimpleQueue("celery")
            try:
                return int(queue.qsize())
            finally:
                queue.close()

    before = queued()
    charge_card.delay(1)
    assert queued() == before + 1
    guard = make_guard()
    with mirrored(guard), pytest.raises(SideEffectBlocked) as info:
        charge_card.delay(2)
    assert isinstance(info.value, kombu.exceptions.OperationalError)
    with mirrored(make_guard(on_block="respond")):
        result = charge_card.apply_async((3,), task_id="t-3")
        assert (result.id, result.state, result.get()) == ("t-3", "SUCCESS", None)
        app.send_task("refund", (4,))
    assert queued() == before + 1
    assert guard.metrics.blocked("celery", "raise") == 1


def test_install_is_idempotent_and_reports_each_library() -> None:
    first = make_guard().patches
    assert make_guard().patches == first
    assert {name for name, status in first.items() if status == "installed"} == {
        "threads", "httpx", "urllib3", "requests", "aiohttp", "urllib", "smtplib",
        "django-mail", "celery",
    }  # fmt: skip
    assert not getattr(httpx.HTTPTransport.handle_request.__wrapped__, "__shadowtap_guard__", 0)
