"""A stand-in for Pulse's Kafka producer in unit tests of the live loop (the Kafka tests use the real one)."""

from __future__ import annotations

from dashboard.pulse.batch import Message


class FakeProducer:
    """Records live sends; idle_until jumps the fake clock (starting at `now`) to the requested time."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sent: list[Message] = []

    def clock(self) -> float:
        return self.now

    def idle_until(self, when: float) -> bool:
        self.now = max(self.now, when)
        return True

    def send(self, message: Message, live: bool = False) -> bool:
        assert live
        self.sent.append(message)
        return True
