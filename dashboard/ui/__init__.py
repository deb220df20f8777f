"""The Streamlit and Altair layer: the only code that imports either."""

from __future__ import annotations

import gc

_booted = False


def boot() -> None:
    """Do the process-wide set-up of a dashboard server once, from the entry point.

    The libraries' import-time objects (pandas, Altair, Streamlit) make every
    full garbage-collection pass cost 45-80 ms in the middle of a page run;
    `gc.freeze()` moves them out of the collector's sight. Calling it again
    later only freezes what was allocated since, which is harmless.
    Streamlit runs the entry point on every rerun: only the first call acts.
    """
    global _booted  # noqa: PLW0603  (once per process, by design)
    if not _booted:
        _booted = True
        gc.freeze()
