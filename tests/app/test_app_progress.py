"""Long simulations in the explorer: a progress bar while they run, and a widget change abandons them.

Streamlit reruns the script when a widget changes; the running script stops at its next
``st.*`` call (a "yield point"). The simulators report progress about 100 times per run and each
report moves the page's progress bar, so a run is interrupted within ~1 % of its length, and
nothing is cached until a run has finished (``app_lib.simulate.cached_runs``).

Here the browser's widget change is played by the simulator itself: at its first progress report
it files the rerun request the server would file (``ScriptRequests.request_rerun`` with the new
widget values), exactly as a user moving a slider during the run.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from streamlit.elements.progress import ProgressMixin
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SMALL = dict(tab_prompts=10, tab_responses=4, tab_seeds=1, estimators=["grpo", "riskpo"], bundle_size=5)
LONG_STEPS, SHORT_STEPS = 60, 20


@pytest.fixture
def recorded(monkeypatch):
    """Every run_tabular call (its steps, and how it ended) and every progress-bar update."""
    import sandbox

    real = sandbox.run_tabular
    log = {"runs": [], "bar": [], "interrupt": None}

    def run_tabular(config, estimators, seeds=4, progress=None):
        entry = {"steps": config.steps, "ended": "running", "fractions": []}
        log["runs"].append(entry)

        def report(fraction):
            entry["fractions"].append(fraction)
            if log["interrupt"] is not None and 0 < fraction < 1:
                get_script_run_ctx().script_requests.request_rerun(log["interrupt"])
                log["interrupt"] = None  # one widget change
            if progress is not None:
                progress(fraction)

        try:
            result = real(config, estimators, seeds=seeds, progress=report)
        except RerunException:
            entry["ended"] = "abandoned for a rerun"
            raise
        entry["ended"] = "finished"
        return result

    def progress_spy(self, value, text=None, **kwargs):
        log["bar"].append((value, text))
        return real_progress(self, value, text=text, **kwargs)

    real_progress = ProgressMixin.progress
    monkeypatch.setattr(sandbox, "run_tabular", run_tabular)
    monkeypatch.setattr(ProgressMixin, "progress", progress_spy)
    return log


def test_a_widget_change_abandons_a_running_simulation_and_caches_nothing_of_it(recorded):
    from app_lib import memo

    memo.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["view"] = "tabular"
    for key, value in {**SMALL, "tab_steps": SHORT_STEPS}.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    assert [run["ended"] for run in recorded["runs"]] == ["finished"]
    # What the browser would send after the user moves "steps" back to SHORT_STEPS during the long run.
    short_widgets = at.slider(key="tab_steps").root.get_widget_states()
    memo.clear()  # the short run must be computed again after the interruption, not read back

    recorded["interrupt"] = RerunData(
        widget_states=short_widgets, query_string=urllib.parse.urlencode(at.query_params, doseq=True)
    )
    recorded["bar"].clear()
    at.slider(key="tab_steps").set_value(LONG_STEPS).run()
    assert not at.exception, at.exception

    long_run, rerun = recorded["runs"][1:]
    assert (long_run["steps"], long_run["ended"]) == (LONG_STEPS, "abandoned for a rerun")
    assert max(long_run["fractions"]) < 1  # stopped at its first report, long before the end
    assert (rerun["steps"], rerun["ended"]) == (SHORT_STEPS, "finished")
    # The long run had its progress bar (label and a fraction strictly between 0 and 1) before it stopped.
    assert any(text and "tabular runs" in text and 0 < value < 1 for value, text in recorded["bar"])
    # The page is the rerun's: the short run's last step, the slider back at SHORT_STEPS.
    assert at.slider(key="tab_steps").value == SHORT_STEPS
    assert any(f"At step {SHORT_STEPS}" in m.value for m in at.markdown)

    # Nothing of the abandoned run was kept: asking for it again runs the simulator again, to the end.
    at.slider(key="tab_steps").set_value(LONG_STEPS).run()
    assert not at.exception, at.exception
    assert [(run["steps"], run["ended"]) for run in recorded["runs"][3:]] == [(LONG_STEPS, "finished")]
    assert any(f"At step {LONG_STEPS}" in m.value for m in at.markdown)
