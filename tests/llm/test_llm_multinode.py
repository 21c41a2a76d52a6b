"""Two "machines" on loopback: the shipped 2-node accelerate config, executed (slow tier).

Each machine is its own ``accelerate launch --config_file llm/accelerate_configs/multinode_2x8.yaml
--num_machines 2 --machine_rank {0,1} --main_process_ip 127.0.0.1`` with one CPU process (gloo),
overriding only the sizes (2 processes, no bf16) on the command line. Checked:

* training steps complete on both machines and end with bit-identical weights and quantile tracker;
* the checkpoint the pair wrote resumes on the pair (``--resume latest``), identical again;
* killing one machine (SIGKILL to its whole launcher) makes the other exit with an error within a
  bounded time instead of hanging; a machine that stops answering (SIGSTOP) is cut off by
  ``dist_timeout_s`` (the process-group timeout the trainer passes to accelerate).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from two_process_launch import launch_two_machines

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent("""
    import hashlib, json, os, sys
    from llm.train import TrainConfig, train

    def digest(model):
        h = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode()); h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    out = sys.argv[1]
    cfg = TrainConfig.from_args(sys.argv[2:])
    result = train(cfg)
    rank = int(os.environ["RANK"])
    with open(os.path.join(out, f"rank{rank}-{cfg.steps}.json"), "w") as f:
        json.dump({"num_processes": result.num_processes, "final": digest(result.model),
                   "tracker": result.estimator.tracker.state_dict(), "metrics": result.metrics,
                   "machine_rank": os.environ.get("GROUP_RANK")}, f)
""")


def signal_machine(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to one machine's whole tree: launcher, torchrun agent and the worker (which torchrun
    starts in a session of its own, so a process-group signal would miss it)."""
    import psutil

    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in reversed(tree):  # the worker first, so the launcher cannot react before it is hit
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_args(run_dir: Path, steps: int, **extra) -> list[str]:
    values = {
        "model": "tiny-random",
        "dataset": "fixture:gsm8k",
        "reward_workers": "0",
        "rewards": "[[test_llm_train_stubs:crc_reward, 1.0]]",
        "estimator": "riskpo",
        "estimator_params": "{alpha: 0.2, beta: 0.8, omega: 0.5, bundle_size: 2}",
        "prompts_per_step": "4",
        "group_size": "4",
        "max_new_tokens": "8",
        "steps": str(steps),
        "save_every": "2",
        "lr": "1e-3",
        "report_to": "none",
        "save_model": "false",
        "output_dir": str(run_dir),
        **{k: str(v) for k, v in extra.items()},
    }
    return [item for key, value in values.items() for item in (f"--{key}", value)]


def finish(procs, timeout: float) -> list[tuple[int, str]]:
    results = []
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                signal_machine(p, signal.SIGKILL)
            raise
        results.append((proc.returncode, proc.log_path.read_text()))
    return results


def read_ranks(tmp_path: Path, steps: int) -> list[dict]:
    return [json.loads((tmp_path / f"rank{r}-{steps}.json").read_text()) for r in (0, 1)]


def test_two_machines_train_identically_and_the_pair_resumes(tmp_path):
    run_dir = tmp_path / "run"
    procs = launch_two_machines(DRIVER, tmp_path, free_port(), tiny_args(run_dir, steps=2))
    for rc, out in finish(procs, timeout=600):
        assert rc == 0, out[-4000:]
    rank0, rank1 = read_ranks(tmp_path, 2)
    assert rank0["num_processes"] == rank1["num_processes"] == 2
    assert (rank0["machine_rank"], rank1["machine_rank"]) == ("0", "1")
    assert rank0["final"] == rank1["final"]
    assert rank0["tracker"] == rank1["tracker"] and rank0["tracker"]["initialized"]
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2]

    # The checkpoint written by the pair resumes on the pair.
    procs = launch_two_machines(DRIVER, tmp_path, free_port(), tiny_args(run_dir, steps=3, resume="latest"))
    for rc, out in finish(procs, timeout=600):
        assert rc == 0, out[-4000:]
    resumed0, resumed1 = read_ranks(tmp_path, 3)
    assert resumed0["final"] == resumed1["final"] != rank0["final"]
    assert resumed0["tracker"] == resumed1["tracker"] and resumed0["tracker"]["step"] > rank0["tracker"]["step"]
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
def test_losing_one_machine_stops_the_other_within_a_bound(tmp_path, fault):
    timeout_s = 20
    run_dir = tmp_path / "run"
    procs = launch_two_machines(
        DRIVER, tmp_path, free_port(), tiny_args(run_dir, steps=200, dist_timeout_s=timeout_s, save_every=0)
    )
    metrics = run_dir / "metrics.jsonl"
    began = time.monotonic()
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert all(p.poll() is None for p in procs), "a machine exited before the first step"
        assert time.monotonic() - began < 600, "no step within 600 s"
        time.sleep(0.2)
    signal_machine(procs[1], getattr(signal, fault))  # machine 1: launcher, agent and worker
    lost_at = time.monotonic()
    # SIGKILL closes the sockets (gloo sees it at once); SIGSTOP leaves them open, so only the
    # process-group timeout can end the wait: bound = timeout + start-up slack of the error path.
    bound = timeout_s + 90
    try:
        procs[0].wait(timeout=bound)
    except subprocess.TimeoutExpired:
        signal_machine(procs[0], signal.SIGKILL)
        pytest.fail(f"machine 0 still running {bound} s after machine 1 got {fault}")
    finally:
        signal_machine(procs[1], signal.SIGCONT)
        signal_machine(procs[1], signal.SIGKILL)
        procs[1].wait()
    waited = time.monotonic() - lost_at
    out = procs[0].log_path.read_text()
    print(f"\n[multinode] {fault} on machine 1: machine 0 exited rc={procs[0].returncode} after {waited:.1f} s")
    assert procs[0].returncode != 0
    clear = ("Connection closed by peer", "Connection reset by peer", "timed out", "Timed out", "Timeout")
    assert any(word in out for word in clear), out[-4000:]
