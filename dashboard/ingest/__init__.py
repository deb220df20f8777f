"""The validating ingest worker (`python -m dashboard.ingest`)."""
