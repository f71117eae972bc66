import pytest
from pydantic import BaseModel, ValidationError
from tandem.errors import (
    AggregateNotFound,
    ConcurrencyError,
    DomainError,
    UnknownEventType,
    error_from_exception,
)
from tandem.result import Error, Failure, Result, ResultAccessError, Success

pytestmark = pytest.mark.unit


def test_success_exposes_value_and_refuses_error() -> None:
    result: Result[int] = Success(3)
    assert result.is_success()
    assert not result.is_failure()
    assert result.value == 3
    with pytest.raises(ResultAccessError):
        _ = result.error
    assert result.map(lambda v: v + 1) == Success(4)


def test_failure_exposes_error_and_refuses_value() -> None:
    error = Error(code="nope", message="bad", status_code=400, details={"field": "x"})
    result: Result[int] = Failure(error)
    assert result.is_failure()
    assert result.error is error
    with pytest.raises(ResultAccessError, match="nope"):
        _ = result.value
    assert result.map(lambda v: v + 1) == result
    assert result.unwrap_or(7) == 7


def test_error_to_dict_is_machine_readable_without_status() -> None:
    error = Error(code="c", message="m", status_code=418, details={"a": 1})
    assert error.to_dict() == {"code": "c", "message": "m", "details": {"a": 1}}


def test_exceptions_map_to_codes_and_statuses() -> None:
    conflict = error_from_exception(ConcurrencyError("p1", 2, 3))
    assert (conflict.code, conflict.status_code) == ("concurrency_conflict", 409)
    assert conflict.details["expected_version"] == 2
    assert conflict.details["actual_version"] == 3
    missing = error_from_exception(AggregateNotFound("p1", "Product"))
    assert (missing.code, missing.status_code) == ("not_found", 404)
    rule = error_from_exception(DomainError("invalid_price", "must be positive"))
    assert (rule.code, rule.status_code, rule.message) == ("invalid_price", 422, "must be positive")
    unknown = error_from_exception(UnknownEventType("Nope"))
    assert unknown.code == "unknown_event_type"
    crash = error_from_exception(RuntimeError("boom"))
    assert (crash.code, crash.status_code) == ("handler_error", 500)


def test_validation_errors_map_to_422_with_json_safe_details() -> None:
    class Model(BaseModel):
        n: int

    with pytest.raises(ValidationError) as raised:
        Model(n="x")  # type: ignore[arg-type]
    error = error_from_exception(raised.value)
    assert (error.code, error.status_code) == ("validation_error", 422)
    assert error.details["errors"][0]["loc"] == ("n",)
    assert "input" not in error.details["errors"][0]
