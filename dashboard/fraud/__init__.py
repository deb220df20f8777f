"""Fraud detectors of the real-time layer (DATA.md "Fraud signals"). Pure: no Kafka, no clock.

    detector = FraudDetector()                    # one per Kafka partition
    for tx in transactions:                       # Transaction, FraudInput, ...
        for alert in detector.observe(tx):
            produce(FRAUD_TOPIC, alert.to_json())

Rules (defaults; each a field of `Limits`, which every detector takes):
- velocity: more than 5 transactions of one customer in a window
  (x - 2 min, x] of event time; one alert per burst (`VelocityDetector`);
- geo_impossible: two transactions of one customer more than 50 km apart
  (haversine, R = 6371.0088 km) and less than 5 minutes apart (`GeoDetector`);
- amount_anomaly: an amount above 10 x the customer's average over at least
  5 earlier transactions; the anomalous amount then joins the average
  (`AmountDetector`).

Event time is the transaction's timestamp field (ms). Events up to 60 s older
than the customer's newest still count in the windows; older ones are too
late for velocity and geo (counted in `late_events`) but still count for
amounts. Each event costs amortised O(1): velocity and geo share one
per-customer deque sorted by time, trimmed to the longer window plus the
lateness and to 64 events (a late event walks back over the few newer ones;
the geo rule compares with the customer's events of the last 5 minutes, at
most 64, only when a box around them spans more than 50 km), and customers
idle longer than that dropped, except their running averages (two numbers
per customer). A customer with one event in the window keeps that entry
alone: about 0.4 kB per distinct customer with its average. `FraudDetector` (`combined`) takes exact shortcuts; the
single-rule detectors, which run their rule on every event, are the
reference it is tested against. Measured with bench/fraud.py: about 2 us
per event. `inputs` says which transactions feed the detectors;
a `copy.deepcopy` of a detector is a snapshot to rewind to.
"""

from dashboard.fraud.amount import AmountDetector
from dashboard.fraud.detector import FraudDetector, StateSize
from dashboard.fraud.geo import GeoDetector, haversine_km
from dashboard.fraud.inputs import FraudInput, detector_input, plain_input
from dashboard.fraud.rules import Alert, Limits, TransactionLike
from dashboard.fraud.velocity import VelocityDetector

__all__ = [
    "Alert",
    "AmountDetector",
    "FraudDetector",
    "FraudInput",
    "GeoDetector",
    "Limits",
    "StateSize",
    "TransactionLike",
    "VelocityDetector",
    "detector_input",
    "haversine_km",
    "plain_input",
]
