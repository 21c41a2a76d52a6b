"""Run a driver script under `accelerate launch` as 2 CPU processes (gloo), for the distributed tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _cpu_env() -> dict:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "llm"), os.environ.get("PYTHONPATH", "")]
        ),
        OMP_NUM_THREADS="1",
        ACCELERATE_USE_CPU="true",
        TOKENIZERS_PARALLELISM="false",
    )


def launch_two_cpu_processes(driver_source: str, tmp_path: Path, port: int, args: list[str], timeout: float = 870):
    """Write ``driver_source`` to tmp_path/driver.py and run it on 2 CPU ranks with ``tmp_path`` then ``args``.

    Skips when the accelerate CLI is missing; returns the finished process (stdout/stderr captured).
    """
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate CLI not on PATH")
    driver = tmp_path / "driver.py"
    driver.write_text(driver_source)
    env = _cpu_env()
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


MULTINODE_CONFIG = REPO / "llm" / "accelerate_configs" / "multinode_2x8.yaml"


def launch_two_machines(driver_source: str, tmp_path: Path, port: int, args: list[str]) -> list[subprocess.Popen]:
    """Start the shipped 2-node config as two "machines" on loopback, one CPU process (gloo) each.

    Two independent ``accelerate launch`` commands (``--machine_rank 0`` and ``1``, ``main_process_ip
    127.0.0.1``), each in its own session so a test can signal one machine's whole process tree.
    Only the sizes are overridden (2 processes in all, no bf16 on CPU). Returns the two running
    processes; each one's stdout and stderr go to ``tmp_path/machine<rank>.log`` (``proc.log_path``),
    so a long run never blocks on a full pipe.
    """
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate CLI not on PATH")
    driver = tmp_path / "driver.py"
    driver.write_text(driver_source)
    procs = []
    for machine_rank in (0, 1):
        cmd = [
            "accelerate",
            "launch",
            "--config_file",
            str(MULTINODE_CONFIG),
            "--num_machines",
            "2",
            "--num_processes",
            "2",
            "--machine_rank",
            str(machine_rank),
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            str(port),
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--num_cpu_threads_per_process",
            "1",
            str(driver),
            str(tmp_path),
            *args,
        ]
        log_path = tmp_path / f"machine{machine_rank}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=_cpu_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc.log_path = log_path
        procs.append(proc)
    return procs
