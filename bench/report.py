"""Shared by the benchmarks: write one named section of BENCHMARKS.md.

Each benchmark owns a `<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` block
and replaces only that block, so benchmarks run (and write) independently.
"""

from __future__ import annotations

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
