"""I/O-free HTTP plumbing of the client: errors from responses, transport errors, retries (no sockets)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from pinecone_rag.client._http import (
    Reachability,
    acall_with_retries,
    call_with_retries,
    error_from_response,
    is_retryable,
    parse_retry_after,
    raise_for_response,
    response_json,
    translate_transport_error,
)
from pinecone_rag.config import ClientConfig, RetryConfig
from pinecone_rag.errors import (
    AlreadyExistsError,
    ApiError,
    ConfigurationError,
    DataLossError,
    DeadlineExceededError,
    ForbiddenError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
    PineconeConnectionError,
    PineconeTimeoutError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)

SECRET = "pcsk_secret_key_value"


# ------------------------------------------------------------------------------ errors from responses


def response(status, *, json=None, text=None, headers=None, key=SECRET):
    request = httpx.Request("GET", "https://api.pinecone.io/indexes/docs", headers={"Api-Key": key})
    if json is not None:
        return httpx.Response(status, json=json, headers=headers, request=request)
    return httpx.Response(status, text=text or "", headers=headers, request=request)


def control_body(status, code, message):
    return {"error": {"code": code, "message": message}, "status": status}


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "INVALID_ARGUMENT", InvalidArgumentError),
        (401, "UNAUTHENTICATED", UnauthenticatedError),
        (403, "FORBIDDEN", ForbiddenError),
        (404, "NOT_FOUND", NotFoundError),
        (409, "ALREADY_EXISTS", AlreadyExistsError),
        (413, "PAYLOAD_TOO_LARGE", PayloadTooLargeError),
        (429, "RESOURCE_EXHAUSTED", ResourceExhaustedError),
        (500, "INTERNAL", InternalError),
        (500, "DATA_LOSS", DataLossError),
        (501, "UNIMPLEMENTED", UnimplementedError),
        (503, "UNAVAILABLE", UnavailableError),
        (503, "SERVICE_UNAVAILABLE", UnavailableError),
        (504, "DEADLINE_EXCEEDED", DeadlineExceededError),
    ],
)
def test_control_plane_error_shape(status, code, cls):
    resp = response(status, json=control_body(status, code, "what went wrong"))
    with pytest.raises(cls) as caught:
        raise_for_response(resp)
    assert type(caught.value) is cls
    assert caught.value.message == "what went wrong"
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("status", "grpc_code", "cls"),
    [
        (400, 3, InvalidArgumentError),
        (404, 5, NotFoundError),
        (413, 3, PayloadTooLargeError),  # status wins when the gRPC code names a different status
        (429, 8, ResourceExhaustedError),
        (500, 15, DataLossError),
        (500, 13, InternalError),
        (503, 14, UnavailableError),
    ],
)
def test_data_plane_error_shape(status, grpc_code, cls):
    body = {"code": grpc_code, "message": "Vector dimension 768 does not match 1536", "details": []}
    error = error_from_response(response(status, json=body))
    assert type(error) is cls
    assert error.message == "Vector dimension 768 does not match 1536"
    assert error.details is None


def test_plain_text_401_and_empty_bodies():
    error = error_from_response(
        response(401, text="Invalid API key.", headers={"content-type": "text/plain"})
    )
    assert isinstance(error, UnauthenticatedError)
    assert error.message == "Invalid API key."
    empty = error_from_response(response(502, text=""))
    assert isinstance(empty, InternalError)
    assert empty.status == 502
    assert "502 Bad Gateway" in empty.message
    assert str(empty).startswith("(502 ")


def test_unmapped_status_keeps_status_and_code():
    error = error_from_response(response(402, json=control_body(402, "PAYMENT_REQUIRED", "Pay up.")))
    assert type(error) is ApiError
    assert (error.status, error.code, error.message) == (402, "PAYMENT_REQUIRED", "Pay up.")
    assert ApiError.status == 500  # the class itself is untouched


def test_error_details_request_id_and_retry_after():
    body = {
        "error": {"code": "RESOURCE_EXHAUSTED", "message": "slow down", "details": {"a": 1}},
        "status": 429,
    }
    error = error_from_response(
        response(429, json=body, headers={"x-pinecone-request-id": "req-1", "Retry-After": "3"})
    )
    assert isinstance(error, ResourceExhaustedError)
    assert (error.details, error.request_id, error.retry_after) == ({"a": 1}, "req-1", 3.0)
    other = error_from_response(response(500, json={"message": "boom"}, headers={"x-request-id": "r2"}))
    assert (other.message, other.request_id, other.retry_after) == ("boom", "r2", None)


def test_retry_after_formats():
    now = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 0.5 ", now=now) == 0.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


def test_api_key_never_in_messages():
    echoed = response(401, text=f"Invalid API key {SECRET}.")
    error = error_from_response(echoed)
    assert SECRET not in error.message
    assert SECRET not in str(error)
    assert "***" in error.message


def test_success_passes_and_long_bodies_are_cut():
    raise_for_response(response(200, json={}))
    raise_for_response(response(202, text=""))
    error = error_from_response(response(500, text="x" * 10_000))
    assert len(error.message) < 2_100


def test_response_json():
    assert response_json(response(200, json={"a": 1})) == {"a": 1}
    assert response_json(response(202, text="")) is None
    with pytest.raises(ApiError, match="Expected a JSON answer"):
        response_json(response(200, text="<html>"))


# ------------------------------------------------------------------------- transport error translation


def test_translate_transport_errors_name_the_url_without_credentials():
    request = httpx.Request("GET", "https://user:pw@api.pinecone.io:8443/indexes?ids=secret-ids")
    refused = translate_transport_error(httpx.ConnectError("[Errno 111] Connection refused", request=request))
    assert isinstance(refused, PineconeConnectionError)
    assert "https://api.pinecone.io:8443/indexes" in str(refused)
    for text in ("user", "pw@", "secret-ids"):
        assert text not in str(refused)
    timeout = translate_transport_error(httpx.ReadTimeout("timed out", request=request))
    assert isinstance(timeout, PineconeTimeoutError)
    assert "waiting for an answer from https://api.pinecone.io:8443/indexes" in str(timeout)
    assert isinstance(
        translate_transport_error(httpx.RemoteProtocolError("gone", request=request)), PineconeConnectionError
    )
    assert isinstance(
        translate_transport_error(httpx.ReadError("reset", request=request)), PineconeConnectionError
    )
    bad_scheme = translate_transport_error(httpx.UnsupportedProtocol("ftp", request=request))
    assert isinstance(bad_scheme, ConfigurationError)
    status = httpx.HTTPStatusError("x", request=request, response=response(404, json={"message": "gone"}))
    assert isinstance(translate_transport_error(status), NotFoundError)
    assert isinstance(translate_transport_error(httpx.ConnectError("no request")), PineconeConnectionError)


# ------------------------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        (PineconeConnectionError("refused"), False, True),
        (UnavailableError("down"), False, True),
        (ResourceExhaustedError("429"), False, True),
        (InternalError("500"), False, True),
        (UnimplementedError("501"), True, False),
        (DataLossError("crc"), True, False),
        (PineconeTimeoutError("slow"), True, True),
        (PineconeTimeoutError("slow"), False, False),
        (DeadlineExceededError("slow"), True, True),
        (DeadlineExceededError("slow"), False, False),
        (AlreadyExistsError("409"), True, False),
        (NotFoundError("404"), True, False),
        (InvalidArgumentError("400"), True, False),
        (UnauthenticatedError("401"), True, False),
        (ValueError("not ours"), True, False),
    ],
)
def test_is_retryable(exc, idempotent, expected):
    assert is_retryable(exc, idempotent=idempotent) is expected


def attempt_raising(raw):
    try:
        raise raw
    except httpx.HTTPError as error:
        raise translate_transport_error(error) from None  # as transports do; the context keeps `error`


def test_connect_timeouts_are_retryable_even_when_not_idempotent():
    request = httpx.Request("POST", "http://127.0.0.1:1/indexes")
    with pytest.raises(PineconeTimeoutError) as caught:
        attempt_raising(httpx.ConnectTimeout("connect", request=request))
    assert is_retryable(caught.value, idempotent=False)
    with pytest.raises(PineconeTimeoutError) as caught:
        attempt_raising(httpx.ReadTimeout("read", request=request))
    assert not is_retryable(caught.value, idempotent=False)
    assert is_retryable(caught.value, idempotent=True)


class Flaky:
    def __init__(self, failures, exc_factory, result="done"):
        self.failures = failures
        self.exc_factory = exc_factory
        self.result = result
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc_factory()
        return self.result


POLICY = RetryConfig(max_attempts=4, initial_backoff=0.1, max_backoff=1.0)


def test_call_with_retries_recovers_and_honours_retry_after():
    slept = []
    flaky = Flaky(3, lambda: ResourceExhaustedError("slow", retry_after=5.0))
    assert call_with_retries(flaky, POLICY, sleep=slept.append) == "done"
    assert flaky.calls == 4
    assert slept == [5.0, 5.0, 5.0]  # the server's hint is longer than any drawn backoff


def test_call_with_retries_backoff_is_bounded_and_jittered():
    slept = []
    flaky = Flaky(3, lambda: UnavailableError("down"))
    call_with_retries(flaky, POLICY, sleep=slept.append)
    for attempt, delay in enumerate(slept, start=1):
        assert 0 <= delay <= min(1.0, 0.1 * 2 ** (attempt - 1))


def test_call_with_retries_gives_up_after_max_attempts():
    flaky = Flaky(10, lambda: InternalError("boom"))
    with pytest.raises(InternalError):
        call_with_retries(flaky, POLICY, sleep=lambda _s: None)
    assert flaky.calls == 4


def test_unreachable_service_is_retried_for_the_reconnect_budget_beyond_max_attempts(monkeypatch):
    # A restart of the local engine outlasts max_attempts' short backoffs; the budget rides it out.
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    policy = RetryConfig(max_attempts=2, max_backoff=1.0, reconnect_budget=5.0)
    # Six failures sleep at most 0.1 + 0.2 + 0.4 + 0.8 + 1 + 1 s: well inside the budget, past max_attempts.
    down = Flaky(6, lambda: UnavailableError("down"))
    assert call_with_retries(down, policy, sleep=sleep) == "done"
    assert down.calls == 7
    clock[0] = 0.0
    never = Flaky(10_000, lambda: PineconeConnectionError("refused"))
    with pytest.raises(PineconeConnectionError):
        call_with_retries(never, policy, sleep=sleep)
    assert 5.0 <= clock[0] <= 6.0
    # Other failures still stop at max_attempts.
    clock[0] = 0.0
    broken = Flaky(10, lambda: InternalError("boom"))
    with pytest.raises(InternalError):
        call_with_retries(broken, policy, sleep=sleep)
    assert broken.calls == 2
    # An integer retry count is exact: no reconnect budget on top of it.
    assert ClientConfig.resolve("k", environ={}, retries=2).retries.reconnect_budget == 0


def test_the_reconnect_budget_applies_only_to_a_service_once_reached(monkeypatch):
    # Never reached is more likely a wrong host than a restart: fail after max_attempts, not the budget.
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    policy = RetryConfig(max_attempts=2, max_backoff=1.0, reconnect_budget=5.0)
    reach = Reachability()
    wrong_host = Flaky(10_000, lambda: PineconeConnectionError("refused"))
    with pytest.raises(PineconeConnectionError):
        call_with_retries(wrong_host, policy, sleep=sleep, reachability=reach)
    assert wrong_host.calls == 2
    assert not reach.reached
    assert call_with_retries(Flaky(0, ValueError), policy, sleep=sleep, reachability=reach) == "done"
    assert reach.reached
    restarting = Flaky(6, lambda: PineconeConnectionError("refused"))
    assert call_with_retries(restarting, policy, sleep=sleep, reachability=reach) == "done"
    assert restarting.calls == 7


def test_call_with_retries_does_not_retry_client_errors_or_timeouts_of_writes():
    conflict = Flaky(1, lambda: AlreadyExistsError("exists"))
    with pytest.raises(AlreadyExistsError):
        call_with_retries(conflict, POLICY, sleep=lambda _s: None)
    assert conflict.calls == 1
    timeout = Flaky(1, lambda: PineconeTimeoutError("slow"))
    with pytest.raises(PineconeTimeoutError):
        call_with_retries(timeout, POLICY, idempotent=False, sleep=lambda _s: None)
    assert timeout.calls == 1
    again = Flaky(1, lambda: PineconeTimeoutError("slow"))
    assert call_with_retries(again, POLICY, sleep=lambda _s: None) == "done"


def test_call_with_retries_translates_httpx_errors():
    request = httpx.Request("GET", "http://127.0.0.1:1/x")
    flaky = Flaky(1, lambda: httpx.ConnectError("refused", request=request))
    assert call_with_retries(flaky, POLICY, sleep=lambda _s: None) == "done"
    always = Flaky(99, lambda: httpx.ConnectError("refused", request=request))
    with pytest.raises(PineconeConnectionError) as caught:
        call_with_retries(always, RetryConfig(max_attempts=2, reconnect_budget=0), sleep=lambda _s: None)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert call_with_retries(Flaky(0, ValueError), RetryConfig(max_attempts=1)) == "done"


def test_acall_with_retries():
    slept = []

    async def no_sleep(seconds):
        slept.append(seconds)

    async def main():
        flaky = Flaky(2, lambda: UnavailableError("down"))

        async def attempt():
            return flaky()

        result = await acall_with_retries(attempt, POLICY, sleep=no_sleep)
        assert flaky.calls == 3
        never = Flaky(5, lambda: UnimplementedError("no"))

        async def attempt_never():
            return never()

        with pytest.raises(UnimplementedError):
            await acall_with_retries(attempt_never, POLICY, sleep=no_sleep)
        assert never.calls == 1
        return result

    assert asyncio.run(main()) == "done"
    assert len(slept) == 2
