"""Run a driver script under `accelerate launch` as 2 CPU processes (gloo), for the distributed tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def launch_two_cpu_processes(driver_source: str, tmp_path: Path, port: int, args: list[str], timeout: float = 870):
    """Write ``driver_source`` to tmp_path/driver.py and run it on 2 CPU ranks with ``tmp_path`` then ``args``.

    Skips when the accelerate CLI is missing; returns the finished process (stdout/stderr captured).
    """
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate CLI not on PATH")
    driver = tmp_path / "driver.py"
    driver.write_text(driver_source)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "llm"), os.environ.get("PYTHONPATH", "")]
        ),
        OMP_NUM_THREADS="1",
        ACCELERATE_USE_CPU="true",
        TOKENIZERS_PARALLELISM="false",
    )
    cmd = [
        "accelerate",
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--num_cpu_threads_per_process",
        "1",
        "--main_process_port",
        str(port),
        str(driver),
        str(tmp_path),
        *args,
    ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
