"""The admin helpers retry transient broker errors within a bounded time, and nothing else."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from dashboard.kafka.admin import retrying


def flaky(errors: list[BaseException], result: str = "ok") -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return calls, call


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
    ],
)
def test_transient_errors_are_retried_until_the_call_succeeds(code: int) -> None:
    calls, call = flaky([KafkaException(KafkaError(code)), KafkaException(KafkaError(code)), TimeoutError("slow")])
    assert retrying(call, "watermarks", timeout=10, sleep=lambda s: None) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 4


def test_retrying_gives_up_at_its_deadline_with_the_last_error() -> None:
    now = [0.0]

    def call() -> None:
        now[0] += 1.0
        raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))

    with pytest.raises(KafkaException) as info:
        retrying(call, "watermarks", timeout=5, clock=lambda: now[0], sleep=lambda s: None)
    assert info.value.args[0].code() == KafkaError.NOT_LEADER_FOR_PARTITION
    assert 4 <= now[0] <= 6


@pytest.mark.parametrize(
    "error",
    [
        KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)),
        KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION, fatal=True)),
        ValueError("a bug"),
    ],
)
def test_other_errors_are_raised_at_once(error: BaseException) -> None:
    calls, call = flaky([error])
    with pytest.raises(type(error)):
        retrying(call, "watermarks", timeout=10, sleep=lambda s: None)  # type: ignore[arg-type]
    assert len(calls) == 1
