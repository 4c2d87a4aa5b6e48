"""Every captured Google error body lands in the right branch of the error tree."""

from __future__ import annotations

import json

import httplib2
import pytest
from googleapiclient.errors import HttpError

from reconciler import errors
from reconciler.google.errors import parse_retry_after, translate, translate_http_error
from reconciler.google.retry import RetryPolicy, call_with_retries
from tests.conftest import SAMPLES

EXPECTED = {
    "error-400-timeRangeEmpty-docs.json": errors.BadRequest,
    "error-401-authError-docs.json": errors.AuthFailed,
    "error-403-accessNotConfigured-extendedHelp.json": errors.AccessDenied,
    "error-403-forbiddenForNonOrganizer-docs.json": errors.AccessDenied,
    "error-403-quotaExceeded-calendar-usage-limits-docs.json": errors.QuotaExhausted,
    "error-403-rateLimitExceeded-docs.json": errors.RateLimited,
    "error-403-userRateLimitExceeded.json": errors.RateLimited,
    "error-404-notFound-docs.json": errors.CalendarNotFound,
    "error-409-duplicate-docs.json": errors.BadRequest,
    "error-410-deleted-docs.json": errors.SyncTokenInvalid,
    "error-410-fullSyncRequired.json": errors.SyncTokenInvalid,
    "error-412-conditionNotMet-docs.json": errors.BadRequest,
    "error-429-rateLimitExceeded-docs.json": errors.RateLimited,
    "error-500-backendError-docs.json": errors.TransientGoogleError,
}


def _http_error(name: str, headers: dict[str, str] | None = None) -> HttpError:
    body = (SAMPLES / name).read_bytes()
    status = json.loads(body)["error"]["code"]
    resp = httplib2.Response({"status": str(status), **(headers or {})})
    return HttpError(resp, body, uri="https://www.googleapis.com/calendar/v3/x")


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_sample_error_bodies_are_classified(name: str, expected: type) -> None:
    translated = translate_http_error(_http_error(name))
    assert type(translated) is expected
    assert "\n" not in str(translated)
    assert str(translated).startswith(f"HTTP {translated.status}")


def test_rate_limit_disguised_as_permission_denied_is_classified_by_reason() -> None:
    body = json.dumps({"error": {"code": 403, "message": "Quota exceeded", "status":
                                 "PERMISSION_DENIED", "errors": [{"reason": "rateLimitExceeded",
                                                                  "domain": "usageLimits"}],
                                 "details": [{"quota_limit_value": "600"}]}}).encode()
    exc = HttpError(httplib2.Response({"status": "403"}), body)
    assert isinstance(translate_http_error(exc), errors.RateLimited)


def test_retry_after_is_read_in_both_forms() -> None:
    translated = translate_http_error(
        _http_error("error-429-rateLimitExceeded-docs.json", {"retry-after": "7"}))
    assert translated.retry_after == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


def test_transport_failures_are_transient() -> None:
    assert isinstance(translate(ConnectionResetError("reset")), errors.TransientGoogleError)
    assert isinstance(translate(TimeoutError()), errors.TransientGoogleError)
    assert translate(ValueError("bug")) is None


def test_retries_honour_retry_after_and_stop_on_budget() -> None:
    slept: list[float] = []
    calls = [0]

    def flaky() -> str:
        calls[0] += 1
        if calls[0] < 3:
            raise errors.RateLimited("slow down", retry_after=2.0)
        return "ok"

    assert call_with_retries(flaky, RetryPolicy(attempts=5, max_seconds=60), slept.append) == "ok"
    assert slept == [2.0, 2.0]

    def always() -> str:
        raise errors.RateLimited("slow down", retry_after=100.0)

    with pytest.raises(errors.RateLimited):
        call_with_retries(always, RetryPolicy(attempts=5, max_seconds=60), slept.append)
    assert slept == [2.0, 2.0]  # a wait past the budget is not slept


def test_quota_exhaustion_and_permanent_errors_are_not_retried() -> None:
    for exc in (errors.QuotaExhausted("quota"), errors.CalendarNotFound("gone")):
        calls: list[Exception] = []

        def fail(exc: Exception = exc, calls: list[Exception] = calls) -> None:
            calls.append(exc)
            raise exc

        with pytest.raises(type(exc)):
            call_with_retries(fail, RetryPolicy(), lambda s: None)
        assert len(calls) == 1
