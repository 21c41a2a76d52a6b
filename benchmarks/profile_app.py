"""Where the explorer's server time goes: bench_app.py's steps in-process (AppTest), per step the
process CPU seconds and, with --profile, a cProfile of the script thread (thread CPU time).

    python benchmarks/profile_app.py [--profile] [--top 30] [--out DIR]

The steps are bench_app.py's (first render of view 1 with every import, a new 3-arm bandit run, a
new tabular run, pass@k vs k, cached re-renders of views 1 and 2, the presets view). No browser and
no websocket: what is left of bench_app.py's "server CPU" is Streamlit's messaging. cProfile's own
overhead inflates call-heavy code (imports, plotly's deep copies) 2-3x; read the shares, not the
absolute numbers. --out writes one .pstats file per step (open with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from pathlib import Path

from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
_profiler: list[cProfile.Profile | None] = [None]
_run_script = script_runner.ScriptRunner._run_script


def _profiled_run_script(self, rerun_data):
    """The script thread's run, under the current step's profiler (if any)."""
    profiler = _profiler[0]
    if profiler is None:
        return _run_script(self, rerun_data)
    profiler.enable()
    try:
        return _run_script(self, rerun_data)
    finally:
        profiler.disable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the script thread of each step")
    parser.add_argument("--top", type=int, default=30, help="functions shown per step (cumulative time)")
    parser.add_argument("--out", type=Path, help="write <step>.pstats files here")
    args = parser.parse_args()
    script_runner.ScriptRunner._run_script = _profiled_run_script
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    at.query_params["view"] = "shapes"

    def view(slug: str):
        return lambda: at.sidebar.radio(key="view").set_value(slug).run()

    steps = [
        ("first render", at.run),
        ("new bandit run (3-arm)", view("bandit")),
        ("new tabular run", view("tabular")),
        ("pass@k vs k", lambda: at.checkbox(key="tab_passk").check().run()),
        ("cached re-render (view 1)", view("shapes")),
        ("cached re-render (view 2)", view("bandit")),
        ("view switch (presets)", view("presets")),
    ]
    for name, step in steps:
        _profiler[0] = cProfile.Profile(time.thread_time) if args.profile else None
        cpu = time.process_time()
        step()
        cpu = time.process_time() - cpu
        if at.exception:
            raise RuntimeError(f"step {name!r}: {at.exception}")
        print(f"=== {name}: {cpu:.2f} s process CPU", flush=True)
        if _profiler[0] is not None:
            text = io.StringIO()
            stats = pstats.Stats(_profiler[0], stream=text).sort_stats("cumulative")
            stats.print_stats(args.top)
            print(text.getvalue())
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                stats.dump_stats(args.out / f"{name.split(' (')[0].replace(' ', '_')}.pstats")


if __name__ == "__main__":
    main()
