"""The dashboard server: `python -m dashboard.ui [options of streamlit run]` is `streamlit run app.py`, warmed.

A plain `streamlit run app.py` runs nothing until a browser connects: the first
page run then imports pandas, Altair and the views (about 1.5 s on a 2-core
machine) and starts the Kafka feeds, and the first visitor waits for all of it.
Here Streamlit's own command line runs in this process, and a thread does that
work as soon as the server has started (not before: it would only delay the
server's first answer), while the browser loads Streamlit's frontend (a couple
of seconds in which the server is idle). The first page run then finds the
modules imported and the feed (the same `st.cache_resource` value that
`source.source` returns) already holding rows. Every option of `streamlit run`
passes through; `streamlit run app.py` still works, only its first page is slower.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard import ui
from dashboard.core.settings import Settings, SettingsError

if TYPE_CHECKING:
    from dashboard.ui.source import Source

# Nothing heavy at the top: this module is imported before the server starts, and
# whatever it imports delays the server's first answer. The warming thread imports the rest.

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
APP = ROOT / "app.py"
PAGES = ROOT / "app_pages"
SERVER_WAIT_S = 30.0  # warming waits this long at most for the server to start first
SERVER_POLL_S = 0.02


def _imports(path: Path) -> Iterator[str]:
    """The names of the modules a script imports at its top level (`from a import b` yields a.b and a)."""
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
            yield node.module


def page_modules(app: Path = APP, pages: Path = PAGES) -> list[str]:
    """The modules that app.py and the pages import (those that exist), in a stable order.

    Read from their source, so a page's new import is warmed without a list to keep.
    """
    names = {name for script in [app, *sorted(pages.glob("*.py"))] for name in _imports(script)}
    return sorted(name for name in names if _is_module(name))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # `from module import attribute`: no module of that name
        return False


def warm(app: Path = APP, pages: Path = PAGES) -> Source | None:
    """Import what the pages import and start this server's feeds; return the source (None: bad settings).

    Waits, as the first page run would, at most `source.FIRST_ROWS_WAIT_S` for the first rows.
    Invalid settings start nothing: the first page run shows them as one readable line.
    """
    started = time.perf_counter()
    for name in page_modules(app, pages):
        importlib.import_module(name)
    imported = time.perf_counter()
    ui.boot()  # what app.py would do first: the imports' objects out of the collector's sight
    from dashboard.ui import source as live  # noqa: PLC0415  (imported by the pages: already loaded)

    try:
        settings = Settings.from_env()
    except SettingsError:
        return None
    source = live.source(settings)
    logger.info(
        "warm: page modules imported in %.2f s, feed holds %d rows %.2f s later",
        imported - started,
        len(source.buffer),
        time.perf_counter() - imported,
    )
    return source


def _server_started(timeout: float) -> bool:
    """Wait until this process's Streamlit runtime has started (at most `timeout` s); True if it has."""
    from streamlit import runtime  # noqa: PLC0415  (imported by the command line already)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.exists() and runtime.get_instance().state != runtime.RuntimeState.INITIAL:
            return True
        time.sleep(SERVER_POLL_S)
    return False


def _warm_quietly() -> None:
    try:
        _server_started(SERVER_WAIT_S)
        warm()
    except Exception:  # a bug here must not stop the server: the first page run does the same work and says why
        logger.exception("warming the dashboard failed; the first page run does it instead")


def command(*options: str) -> list[str]:
    """The command line that runs the dashboard server with `options` (of `streamlit run`), in this interpreter."""
    return [sys.executable, "-m", "dashboard.ui", *options]


def main(argv: Sequence[str] | None = None) -> None:
    """Run `streamlit run app.py [argv]` here, warming on a thread once the server is up; exits as Streamlit does."""
    from streamlit.web import cli  # noqa: PLC0415  (the server's own command line: only when serving)

    threading.Thread(target=_warm_quietly, name="darooghe-warm", daemon=True).start()
    args = list(sys.argv[1:] if argv is None else argv)
    cli.main(["run", str(APP), *args], prog_name="streamlit")
