"""Pulse: the Darooghe transaction generator (`python -m dashboard.pulse`).

Pure modules (`profile`, `model`, `batch`, `events`, `invalid`) decide what
to send and when; `producer` and `runner` send it to Kafka.
"""
