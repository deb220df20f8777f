"""The dashboard server's warm-up: which modules it imports, and the command that runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dashboard.ui import serve


def test_page_modules_are_the_modules_app_and_pages_import(tmp_path: Path) -> None:
    pages = tmp_path / "app_pages"
    pages.mkdir()
    (tmp_path / "app.py").write_text("import streamlit as st\n\nfrom dashboard.ui import shell\n")
    (pages / "one.py").write_text(
        "import json\nfrom dashboard.core.schema import STATUSES\nfrom dashboard.ui.charts import transactions\n"
    )
    (pages / "two.py").write_text(
        "from . import sibling\n"  # relative: not resolvable outside a package, skipped
        "import no_such_module_anywhere\n"
        "def later():\n    import csv\n"  # only top-level imports
    )
    assert serve.page_modules(tmp_path / "app.py", pages) == [
        "dashboard.core.schema",  # STATUSES is an attribute, not a module
        "dashboard.ui",
        "dashboard.ui.charts",
        "dashboard.ui.charts.transactions",
        "dashboard.ui.shell",
        "json",
        "streamlit",
    ]


def test_the_real_pages_warm_what_the_overview_needs() -> None:
    modules = serve.page_modules()
    for name in ("pandas", "numpy", "streamlit", "dashboard.ui.shell", "dashboard.ui.widgets"):
        assert name in modules
    assert "dashboard.ui.charts.transactions" in modules  # Altair, through the Overview's charts


def test_command_runs_this_package_in_this_interpreter() -> None:
    assert serve.command("--server.port", "8600") == [sys.executable, "-m", "dashboard.ui", "--server.port", "8600"]


def test_warm_with_a_bad_setting_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUFFER_CAPACITY", "lots")
    assert serve.warm() is None  # the first page run shows the setting as one readable line


def test_without_a_server_warming_stops_waiting_at_its_deadline() -> None:
    assert serve._server_started(0.05) is False  # then warms anyway: the first page run would wait for it
