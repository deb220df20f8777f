"""Darooghe Live: payment stream generator, validating ingest worker and live dashboard."""

__version__ = "0.1.0"
