"""The trainer under faults (``-m faults``): kill -9 at random points, damaged checkpoint files, a full disk.

Every test drives ``python llm/train.py`` on the tiny random model (CPU, one thread) in a subprocess:

* SIGKILL at random times while the trainer steps (generation, update, checkpoint write) and at each
  deterministic point inside a checkpoint save (``RISKRL_FAULT_POINT``, llm/checkpoint.py), each time
  followed by ``--resume latest``: the finished run must equal an uninterrupted one bit for bit
  (weights, optimizer, scheduler, tracker, sampler, RNG, per-step metrics) and no kill may lose more
  than ``save_every`` finished steps.
* every file of a finished checkpoint truncated or corrupted in turn: an explicit resume names the
  file, ``--resume latest`` falls back to the newest intact checkpoint and says so.
* a full disk (a small tmpfs, root only) during a save: the previous checkpoint stays intact and
  the run stops with an error saying the disk is full.

Figures printed with ``-s`` (faults injected, runs recovered, steps lost) are quoted in docs/llm_train.md.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from llm.checkpoint import (
    FAULT_POINT_ENV,
    FAULT_POINTS,
    STATE_FILE,
    CheckpointCorruptError,
    list_checkpoints,
    resolve_checkpoint,
    verify_checkpoint,
)

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
STEPS, SAVE_EVERY = 10, 2
RANDOM_KILLS = 20
# Metrics that measure the machine, not the run (wall-clock times, memory high-water mark).
MACHINE_METRICS = ("time/", "peak_memory_gb")
#: Roofline keys that are counts (model shapes x tokens) must match too; its rates, fractions and the
#: machine's probed peaks are timings, like time/*.
COUNTED_ROOFLINE = ("roofline/update_gflop", "roofline/generate_gb")


def is_deterministic_metric(key: str) -> bool:
    if key.startswith("roofline/"):
        return key in COUNTED_ROOFLINE
    return not key.startswith(MACHINE_METRICS)


def trainer_command(output_dir: Path, resume: bool, steps: int = STEPS, save_every: int = SAVE_EVERY) -> list[str]:
    values = {
        "model": "tiny-random",
        "dataset": "fixture:gsm8k",
        "rewards": "[[test_llm_train_stubs:crc_reward, 1.0]]",
        "reward_workers": "0",
        "estimator": "riskpo",
        "estimator_params": "{alpha: 0.2, beta: 0.8, omega: 0.5, bundle_size: 2}",
        "prompts_per_step": "4",
        "group_size": "4",
        "max_new_tokens": "8",
        "steps": str(steps),
        "save_every": str(save_every),
        "keep_last": "2",
        "lr": "1e-3",
        "report_to": "none",
        "save_model": "false",
        "output_dir": str(output_dir),
    }
    if resume:
        values["resume"] = "latest"
    cmd = [sys.executable, str(REPO / "llm" / "train.py")]
    for key, value in values.items():
        cmd += [f"--{key}", value]
    return cmd


def trainer_env(**extra) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests" / "llm"), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.pop(FAULT_POINT_ENV, None)
    env.update(extra)
    return env


def run_trainer(output_dir: Path, resume: bool, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    env = trainer_env(**kwargs.pop("env", {}))
    return subprocess.run(
        trainer_command(output_dir, resume, **kwargs),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def metric_rows(output_dir: Path) -> dict[int, dict]:
    """step -> the last row logged for it (a resumed run logs the steps after its checkpoint again)."""
    rows = {}
    path = output_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows[row["step"]] = {k: v for k, v in row.items() if is_deterministic_metric(k)}
    return rows


def assert_same(a, b, where: str) -> None:
    """Bit-exact equality of nested checkpoint state (tensors, numpy arrays, containers, scalars)."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def assert_runs_identical(reference: Path, run: Path) -> None:
    from safetensors.torch import load_file

    ref_ckpt, run_ckpt = resolve_checkpoint("latest", reference / "checkpoints"), None
    run_ckpt = resolve_checkpoint("latest", run / "checkpoints")
    assert ref_ckpt.name == run_ckpt.name == f"step-{STEPS:08d}"
    ref_state = torch.load(ref_ckpt / STATE_FILE, weights_only=False)
    run_state = torch.load(run_ckpt / STATE_FILE, weights_only=False)
    ref_state.pop("config"), run_state.pop("config")  # output_dir and resume differ by design
    assert_same(ref_state, run_state, "trainer_state")
    assert_same(
        load_file(str(ref_ckpt / "model" / "model.safetensors")),
        load_file(str(run_ckpt / "model" / "model.safetensors")),
        "weights",
    )
    ref_rows, run_rows = metric_rows(reference), metric_rows(run)
    assert sorted(ref_rows) == sorted(run_rows) == list(range(1, STEPS + 1))
    for step in ref_rows:
        assert_same(ref_rows[step], run_rows[step], f"metrics step {step}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run, and its mean step time (which sets the random kill delays)."""
    out = tmp_path_factory.mktemp("faults") / "reference"
    done = run_trainer(out, resume=False)
    assert done.returncode == 0, done.stderr[-3000:]
    times = [json.loads(line)["time/step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return out, float(np.mean(times))


def _newest_step(root: Path) -> int:
    """The step ``--resume latest`` would continue from (0: no checkpoint yet)."""
    if not list_checkpoints(root):
        return 0
    return int(resolve_checkpoint("latest", root).name.split("-")[1])


def test_sigkill_anywhere_then_resume_latest_is_bit_exact(reference, tmp_path):
    ref_dir, step_time = reference
    rng = random.Random(20260212)
    kills, recovered, lost, phases, chains = 0, 0, [], {"step": 0, "checkpoint write": 0}, 0
    hook_points = [(point, None) for point in FAULT_POINTS]  # one deterministic kill per save point
    hook_kills = 0

    def new_chain() -> Path:
        nonlocal chains
        chains += 1
        return tmp_path / f"chain{chains}"

    out = new_chain()
    while kills < RANDOM_KILLS or hook_points:
        root = out / "checkpoints"
        resume = bool(list_checkpoints(root))
        logged_before = len((out / "metrics.jsonl").read_text().splitlines()) if (out / "metrics.jsonl").exists() else 0
        if kills >= RANDOM_KILLS and hook_points:  # deterministic point inside the next save
            point, _ = hook_points.pop(0)
            next_save = _newest_step(root) + SAVE_EVERY
            if next_save > STEPS:  # no save left for the hook: finish this chain (checked like the others), start anew
                hook_points.insert(0, (point, None))
                done = run_trainer(out, resume=resume)
                assert done.returncode == 0, done.stderr[-3000:]
                assert_runs_identical(ref_dir, out)
                recovered += 1
                out = new_chain()
                continue
            env = trainer_env(**{FAULT_POINT_ENV: f"{point}@{next_save}"})
            done = subprocess.run(
                trainer_command(out, resume), cwd=REPO, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == -signal.SIGKILL, f"{point}: rc={done.returncode}\n{done.stderr[-2000:]}"
            hook_kills += 1
            phases["checkpoint write"] += 1
        else:
            log = open(out.parent / f"{out.name}-launch.log", "w")
            out.mkdir(parents=True, exist_ok=True)
            proc = subprocess.Popen(trainer_command(out, resume), cwd=REPO, env=trainer_env(), stdout=log, stderr=log)
            # Wait for this launch's first finished step, then kill within the next save period.
            while proc.poll() is None:
                rows = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
                if len(rows) > logged_before:
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5 * SAVE_EVERY * step_time))
            if proc.poll() is not None:  # finished (or failed) before the kill
                log.close()
                assert proc.returncode == 0, (out.parent / f"{out.name}-launch.log").read_text()[-3000:]
                assert_runs_identical(ref_dir, out)
                recovered += 1
                out = new_chain()
                continue
            phases["checkpoint write" if list(root.glob(".tmp-step-*")) else "step"] += 1
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log.close()
            kills += 1
        finished = max(metric_rows(out), default=0)
        resumable = _newest_step(root)
        lost.append(finished - resumable)
        assert finished - resumable <= SAVE_EVERY, f"kill lost {finished - resumable} steps (> save_every)"
    # The last chain: resume until it finishes, then compare.
    done = run_trainer(out, resume=bool(list_checkpoints(out / "checkpoints")))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_runs_identical(ref_dir, out)
    recovered += 1
    print(
        f"\n[faults] SIGKILLs: {kills} at random times + {hook_kills} at save points {FAULT_POINTS}; "
        f"landed in: {phases}; runs (chains) resumed to the end and bit-exact: {recovered}/{chains}; "
        f"steps lost per kill: max {max(lost)}, total {sum(lost)} over {len(lost)} kills (save_every={SAVE_EVERY})"
    )
    assert kills >= RANDOM_KILLS and hook_kills == len(FAULT_POINTS) and recovered == chains


def _damage(file: Path, mode: str) -> None:
    data = file.read_bytes()
    if mode == "truncated":
        file.write_bytes(data[: len(data) // 2])
    else:  # one byte flipped in the middle: same size, different content
        i = len(data) // 2
        file.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])


def test_each_damaged_checkpoint_file_is_named_and_latest_falls_back(reference, tmp_path, capfd):
    ref_dir, _ = reference
    newest = resolve_checkpoint("latest", ref_dir / "checkpoints")
    previous = list_checkpoints(ref_dir / "checkpoints")[-2][1]
    files = sorted(p.relative_to(newest) for p in newest.rglob("*") if p.is_file())
    assert len(files) >= 5 and Path("COMPLETE") in files and Path(STATE_FILE) in files
    detected = 0
    for rel in files:
        for mode in ("truncated", "corrupted"):
            root = tmp_path / f"{rel.as_posix().replace('/', '_')}-{mode}"
            shutil.copytree(ref_dir / "checkpoints", root)
            _damage(root / newest.name / rel, mode)
            with pytest.raises(CheckpointCorruptError, match=rel.name) as caught:
                resolve_checkpoint(root / newest.name)
            assert str(root / newest.name) in str(caught.value)
            capfd.readouterr()
            assert resolve_checkpoint("latest", root) == root / previous.name
            said = capfd.readouterr().err
            assert rel.name in said and f"falling back to the newest intact checkpoint {root / previous.name}" in said
            verify_checkpoint(root / previous.name)
            detected += 1
            shutil.rmtree(root)
    print(f"\n[faults] damaged checkpoint files detected: {detected}/{2 * len(files)} ({len(files)} files x 2 modes)")
    assert detected == 2 * len(files)


def test_trainer_resumes_from_the_newest_intact_checkpoint_and_says_so(reference, tmp_path):
    ref_dir, _ = reference
    out = tmp_path / "run"
    shutil.copytree(ref_dir, out)
    newest = resolve_checkpoint("latest", out / "checkpoints")
    _damage(newest / "model" / "model.safetensors", "corrupted")
    done = run_trainer(out, resume=True, steps=STEPS + 1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model.safetensors" in done.stderr and "falling back to the newest intact checkpoint" in done.stderr
    previous_step = STEPS - SAVE_EVERY
    assert [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())][-3:] == [
        previous_step + 1,
        previous_step + 2,
        STEPS + 1,
    ]


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    # 60 MiB: one tiny-model checkpoint (~41 MiB: weights, Adam state, tokenizer) fits, a second does not.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=60M", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode()[-200:]}")
    try:
        out = disk / "run"
        done = run_trainer(out, resume=False, steps=4, save_every=2)
        root = out / "checkpoints"
        print(f"\n[faults] full disk: rc={done.returncode}; last stderr line: {done.stderr.strip().splitlines()[-1]}")
        assert done.returncode != 0
        assert "CheckpointWriteError" in done.stderr and "(disk full)" in done.stderr
        assert "could not write checkpoint step-00000004" in done.stderr
        assert f"the previous checkpoint {root / 'step-00000002'} is intact" in done.stderr
        assert [s for s, _ in list_checkpoints(root)] == [2] and not list(root.glob(".tmp-*"))
        verify_checkpoint(root / "step-00000002")
        assert resolve_checkpoint("latest", root) == root / "step-00000002"
    finally:
        subprocess.run(["umount", str(disk)], check=False)
