"""Shared by the benchmarks: write one named section of BENCHMARKS.md; a pipeline process's environment.

Each benchmark owns a `<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` block
and replaces only that block, so benchmarks run (and write) independently.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"


def write_section(name: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace the `<!-- bench:name -->` section of `path` (BENCHMARKS.md) with `body`, appending it if absent."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body}{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def pipeline_env(bootstrap: str, topic: str, tag: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's Pulse, worker or dashboard: this process's, the broker, `topic`
    as the transactions topic, and output topics and a group of its own named after `topic` and `tag`
    (never the darooghe.* topics a stack on the same broker uses), then `extra`."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TRANSACTIONS_TOPIC": topic,
        "ERROR_TOPIC": f"{topic}.errors.{tag}",
        "FRAUD_TOPIC": f"{topic}.fraud.{tag}",
        "ROLLUPS_TOPIC": f"{topic}.rollups.{tag}",
        "INGEST_GROUP": f"bench.{tag}",
        **extra,
    }


def output_topics(env: dict[str, str]) -> list[str]:
    """The topics a pipeline with `env` writes besides its input (to delete after the run)."""
    return [env["ERROR_TOPIC"], env["FRAUD_TOPIC"], env["ROLLUPS_TOPIC"]]
