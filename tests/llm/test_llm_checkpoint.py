"""llm/checkpoint.py: atomic save, crash safety (exception and a real SIGKILL mid-save), pruning, resolution."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from llm.checkpoint import (
    STATE_FILE,
    begin_checkpoint,
    commit_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resolve_checkpoint,
)

REPO = Path(__file__).resolve().parents[2]


def save_checkpoint(root, step, state, *, keep_last=None, write_extra=None, before_commit=None):
    """A save as the trainer's ``save_run`` does it on one process: begin, write, commit."""
    tmp = begin_checkpoint(root, step)
    torch.save(state, tmp / STATE_FILE)
    if write_extra is not None:
        write_extra(tmp)
    return commit_checkpoint(root, step, keep_last=keep_last, before_commit=before_commit)


def state_for(step):
    return {"step": step, "weights": torch.full((4,), float(step)), "rng": [torch.get_rng_state()]}


def test_save_then_load_roundtrip_and_latest_pointer(tmp_path):
    root = tmp_path / "ckpt"
    path = save_checkpoint(root, 3, state_for(3))
    assert path.name == "step-00000003" and (root / "latest").read_text().strip() == path.name
    loaded_path, state = load_checkpoint("latest", root)
    assert loaded_path == path and state["step"] == 3
    torch.testing.assert_close(state["weights"], torch.full((4,), 3.0), rtol=0, atol=0)
    # A step directory and the root itself resolve too.
    assert resolve_checkpoint(path) == path and resolve_checkpoint(root) == path


def test_exception_between_write_and_rename_keeps_previous_checkpoint(tmp_path):
    root = tmp_path / "ckpt"
    save_checkpoint(root, 1, state_for(1))

    def crash(tmp_dir):
        assert (tmp_dir / "trainer_state.pt").is_file()  # everything written, not yet committed
        raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        save_checkpoint(root, 2, state_for(2), before_commit=crash)
    assert not (root / "step-00000002").exists()
    _, state = load_checkpoint("latest", root)
    assert state["step"] == 1
    # The next save sweeps the leftover temp directory.
    assert list(root.glob(".tmp-*"))
    save_checkpoint(root, 3, state_for(3))
    assert not list(root.glob(".tmp-*"))
    assert [s for s, _ in list_checkpoints(root)] == [1, 3]


def test_sigkill_during_save_never_corrupts_the_last_good_checkpoint(tmp_path):
    root = tmp_path / "ckpt"
    save_checkpoint(root, 1, state_for(1))
    # A child process starts writing a big checkpoint 2 and is SIGKILLed from inside the
    # save (after the payload is on disk, before the rename), like kill -9 mid-save.
    script = textwrap.dedent(f"""
        import os, signal, sys, torch
        sys.path.insert(0, {str(REPO)!r})
        from llm.checkpoint import STATE_FILE, begin_checkpoint, commit_checkpoint
        tmp = begin_checkpoint({str(root)!r}, 2)
        torch.save({{"step": 2, "weights": torch.zeros(2_000_000)}}, tmp / STATE_FILE)
        commit_checkpoint({str(root)!r}, 2, before_commit=lambda d: os.kill(os.getpid(), signal.SIGKILL))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert list(root.glob(".tmp-step-00000002"))  # the half-finished save is there ...
    _, state = load_checkpoint("latest", root)  # ... and ignored
    assert state["step"] == 1
    torch.testing.assert_close(state["weights"], torch.full((4,), 1.0), rtol=0, atol=0)


def test_latest_pointer_to_missing_dir_falls_back_to_newest_complete(tmp_path):
    root = tmp_path / "ckpt"
    save_checkpoint(root, 1, state_for(1))
    save_checkpoint(root, 2, state_for(2))
    (root / "latest").write_text("step-00000009\n")
    assert resolve_checkpoint("latest", root).name == "step-00000002"
    # A step directory without the COMPLETE marker is not a checkpoint.
    (root / "step-00000005").mkdir()
    assert [s for s, _ in list_checkpoints(root)] == [1, 2]
    with pytest.raises(FileNotFoundError, match="COMPLETE"):
        resolve_checkpoint(root / "step-00000005")


def test_keep_last_prunes_oldest(tmp_path):
    root = tmp_path / "ckpt"
    for step in range(1, 5):
        save_checkpoint(root, step, state_for(step), keep_last=2)
    assert [s for s, _ in list_checkpoints(root)] == [3, 4]
    with pytest.raises(ValueError, match="keep_last"):
        save_checkpoint(root, 5, state_for(5), keep_last=0)


def test_resave_same_step_replaces_it(tmp_path):
    root = tmp_path / "ckpt"
    save_checkpoint(root, 1, state_for(1))
    save_checkpoint(root, 1, {"step": 1, "weights": torch.full((4,), 7.0)})
    _, state = load_checkpoint("latest", root)
    assert float(state["weights"][0]) == 7.0


def test_write_extra_lands_inside_the_checkpoint(tmp_path):
    root = tmp_path / "ckpt"
    path = save_checkpoint(
        root, 1, state_for(1), write_extra=lambda d: (d / "model").mkdir() or (d / "model" / "x").write_text("y")
    )
    assert (path / "model" / "x").read_text() == "y"


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
        resolve_checkpoint("latest", tmp_path)
    with pytest.raises(FileNotFoundError, match="not a finished checkpoint"):
        resolve_checkpoint(tmp_path / "nope")
