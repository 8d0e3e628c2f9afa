"""The pure lifecycle rules: backoff with cap and jitter, retry or dead-letter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor import Retry, State
from conveyor.lifecycle import RetryPolicy, after_failure, backoff_delay


def test_backoff_grows_exponentially_to_the_cap() -> None:
    policy = RetryPolicy(backoff=1.0, factor=2.0, cap=10.0, jitter=0.0)
    assert [backoff_delay(policy, n, 0.5) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


@given(
    retry=st.integers(1, 50),
    rand=st.floats(0, 1, exclude_max=True),
    jitter=st.floats(0, 1),
)
def test_jitter_stays_within_its_fraction(retry: int, rand: float, jitter: float) -> None:
    policy = RetryPolicy(backoff=0.5, factor=3.0, cap=600.0, jitter=jitter)
    base = min(600.0, 0.5 * 3.0 ** (retry - 1))
    delay = backoff_delay(policy, retry, rand)
    slack = 1e-9 * max(1.0, base)  # float rounding grows with the size of the delay
    assert base * (1 - jitter) - slack <= delay <= base * (1 + jitter) + slack


def test_retries_then_dead_letter() -> None:
    policy = RetryPolicy(retries=2, backoff=1.0, jitter=0.0)
    error = ValueError("boom")
    assert after_failure(policy, error, 0, 0.5).state is State.RETRYING
    assert after_failure(policy, error, 1, 0.5).state is State.RETRYING
    assert after_failure(policy, error, 2, 0.5).state is State.FAILED
    assert after_failure(policy, error, 0, 0.5, retries=0).state is State.FAILED


def test_retry_on_and_no_retry_on() -> None:
    policy = RetryPolicy(retry_on=(OSError,), no_retry_on=(FileNotFoundError,))
    assert after_failure(policy, ConnectionError(), 0, 0.5).state is State.RETRYING
    assert after_failure(policy, FileNotFoundError(), 0, 0.5).state is State.FAILED
    assert after_failure(policy, ValueError(), 0, 0.5).state is State.FAILED


def test_retry_exception_sets_its_own_delay() -> None:
    policy = RetryPolicy(retry_on=(OSError,))
    decision = after_failure(policy, Retry(delay=42), 0, 0.5)
    assert (decision.state, decision.delay) == (State.RETRYING, 42)
    assert after_failure(policy, Retry(), 0, 0.0).delay == pytest.approx(0.75)


@pytest.mark.parametrize(
    "kwargs", [{"retries": -1}, {"factor": 0.5}, {"jitter": 2.0}, {"backoff": -1.0}]
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
