"""Thin wiring around confluent-kafka; processing code never imports from here."""
