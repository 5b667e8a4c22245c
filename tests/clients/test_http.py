"""Shared classification of responses and transport failures, Retry-After parsing, the HTTP client builder."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from sentinel_signl4.clients.http import (
    build_http_client,
    classify_response,
    classify_transport_error,
    parse_retry_after,
)
from sentinel_signl4.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RemoteError,
    TransientError,
)
from sentinel_signl4.redact import Redactor

REQUEST = httpx.Request("PUT", "https://h/webhook/T0pSecret?code=abc")


def response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


@pytest.mark.parametrize(("status", "kind"), [
    (429, RateLimitedError), (408, TransientError), (500, TransientError), (503, TransientError),
    (401, AuthError), (403, AuthError), (404, NotFoundError), (409, ConflictError), (400, PermanentError),
    (422, PermanentError), (302, PermanentError),
])
def test_status_table(status: int, kind: type[RemoteError]) -> None:
    error = classify_response(response(status, {}), "svc")
    assert type(error) is kind
    assert error is not None and error.status == status


def test_2xx_is_not_an_error() -> None:
    assert classify_response(response(201, {"eventId": "e"}), "svc") is None


def test_messages_carry_service_method_redacted_url_status_and_the_arm_error() -> None:
    error = classify_response(response(409, {"error": {"code": "Conflict", "message": "Newer version exists"}}),
                              "sentinel")
    assert error is not None
    assert error.message == ("sentinel: PUT https://h/webhook/***?code=*** -> HTTP 409: "
                             "Conflict: Newer version exists")
    assert error.code == "Conflict"


def test_signl4_error_bodies_keep_code_message_and_details_and_known_secrets_are_masked() -> None:
    body = {"requestId": "r", "code": 3004, "message": "Error raising event.",
            "details": "An event source with ID T0pSecret was not found."}
    error = classify_response(response(404, body), "signl4", redactor=Redactor(["T0pSecret"]))
    assert error is not None
    assert error.code == "3004"
    assert "Error raising event." in error.message
    assert "T0pSecret" not in error.message


def test_entra_error_bodies_keep_only_the_first_line() -> None:
    body = {"error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c"}
    error = classify_response(response(401, body), "entra")
    assert error is not None
    assert error.message.endswith("invalid_client: AADSTS7000215: Invalid client secret provided.")


def test_non_json_bodies_do_not_break_classification() -> None:
    error = classify_response(httpx.Response(502, text="<html>Bad gateway</html>", request=REQUEST), "svc")
    assert isinstance(error, TransientError)
    assert error.message.endswith("HTTP 502")


def test_retry_after_seconds_date_and_millisecond_headers() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    when = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": when}, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"x-ms-retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"Retry-After": "-3"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_429_carries_retry_after() -> None:
    error = classify_response(response(429, {}, {"Retry-After": "12"}), "svc")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 12.0


@pytest.mark.parametrize(("exc", "kind"), [
    (httpx.ConnectError("refused"), TransientError),
    (httpx.ConnectTimeout("slow connect"), TransientError),
    (httpx.PoolTimeout("pool"), TransientError),
    (httpx.ReadTimeout("slow answer"), OutcomeUnknownError),
    (httpx.WriteTimeout("slow upload"), OutcomeUnknownError),
    (httpx.RemoteProtocolError("Server disconnected"), OutcomeUnknownError),
    (httpx.ReadError("reset"), OutcomeUnknownError),
])
def test_transport_failure_table(exc: httpx.TransportError, kind: type[RemoteError]) -> None:
    exc.request = REQUEST
    error = classify_transport_error(exc, True, service="svc")
    assert type(error) is kind
    assert "T0pSecret" not in error.message
    assert "PUT https://h/webhook/***" in error.message


def test_unclassified_transport_failures_follow_request_sent() -> None:
    exc = httpx.NetworkError("odd")
    assert type(classify_transport_error(exc, False)) is TransientError
    assert type(classify_transport_error(exc, True)) is OutcomeUnknownError


def test_a_certificate_failure_is_permanent() -> None:
    exc = httpx.ConnectError("handshake")
    exc.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer")
    assert type(classify_transport_error(exc, False)) is PermanentError


async def test_the_built_client_uses_the_injected_transport_and_does_not_follow_redirects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://elsewhere/"})

    async with build_http_client(transport=httpx.MockTransport(handler)) as client:
        answer = await client.get("https://h/x")
    assert answer.status_code == 302
    assert answer.request.headers["User-Agent"].startswith("sentinel-signl4/")


def test_a_missing_ca_bundle_fails_at_startup_not_at_the_first_request() -> None:
    with pytest.raises(FileNotFoundError):
        build_http_client(ca_bundle="/nonexistent/ca.pem")
