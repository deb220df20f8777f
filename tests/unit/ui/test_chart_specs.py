"""Charts are validated against the Vega-Lite schema in the tests and not on the server: the same spec either way."""

from __future__ import annotations

import altair as alt
import jsonschema
import pandas as pd
import pytest

from dashboard.ui import widgets

FRAME = pd.DataFrame({"x": [1, 2, 3], "y": [3, 1, 2]})


def test_the_suite_checks_every_rendered_chart() -> None:
    assert widgets.CHECK_CHART_SPECS  # tests/conftest.py sets DAROOGHE_CHECK_CHART_SPECS=1 for every page test


@pytest.mark.parametrize(
    "chart",
    [
        alt.Chart(FRAME).mark_line().encode(x="x:Q", y="y:Q"),
        alt.Chart(FRAME).mark_bar().encode(x="x:O", y="y:Q") + alt.Chart(FRAME).mark_rule().encode(y="mean(y):Q"),
    ],
)
def test_an_unchecked_chart_gives_the_same_spec_without_validating(chart: alt.Chart | alt.LayerChart) -> None:
    fast = widgets.unchecked(chart)
    assert isinstance(fast, type(chart)) and type(fast) is not type(chart)
    assert fast.to_dict() == chart.to_dict()
    broken = chart.copy(deep=False)
    broken["width"] = "wide"  # not a Vega-Lite width
    with pytest.raises(jsonschema.ValidationError):
        broken.to_dict()  # checked: the schema refuses it
    assert widgets.unchecked(broken).to_dict()["width"] == "wide"  # unchecked: passed through, as on the server
