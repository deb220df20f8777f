"""TopicIdentity: a new id for the same name is a recreated topic; a missing topic or a silent broker proves nothing."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from dashboard.kafka.admin import TopicIdentity


class FakeAdmin:
    """Answers describe_topics from a script: a topic id, or a KafkaException of the real type."""

    def __init__(self, answers: list[str | int]) -> None:
        self.answers = answers

    def describe_topics(self, topics: Any, request_timeout: float) -> dict[str, Future[Any]]:
        answer = self.answers.pop(0)
        future: Future[Any] = Future()
        if isinstance(answer, int):
            future.set_exception(KafkaException(KafkaError(answer)))
        else:
            future.set_result(SimpleNamespace(topic_id=answer))
        return {"t": future}


def test_only_a_changed_id_of_a_present_topic_counts_as_recreated() -> None:
    gone, down = KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT
    admin = FakeAdmin(["A", "A", gone, down, "A", gone, "B", "B", down, "C"])
    identity = TopicIdentity(admin, "t")  # type: ignore[arg-type]
    seen = [identity.check() for _ in range(10)]
    assert seen == [None, None, None, None, None, None, ("A", "B"), None, None, ("B", "C")]
    assert identity.current == "C"


def test_the_first_look_only_learns_the_id() -> None:
    identity = TopicIdentity(FakeAdmin([KafkaError.UNKNOWN_TOPIC_OR_PART, "X"]), "t")  # type: ignore[arg-type]
    assert identity.check() is None
    assert identity.check() is None
    assert identity.current == "X"
