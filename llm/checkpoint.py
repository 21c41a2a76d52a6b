"""Atomic training checkpoints.

Layout under ``<output_dir>/checkpoints``::

    step-00000004/            a finished checkpoint (only ever appears complete)
        trainer_state.pt      optimizer (unsharded runs), scheduler, estimator, sampler, RNG, step, config
        model/                the weights, once: save_pretrained export + tokenizer (llm.evaluate reads it)
        optimizer/            sharded runs (FSDP): one optimizer-state file per process (torch.distributed.checkpoint)
        COMPLETE              marker written last inside the temp dir
    latest                    text file naming the newest finished step directory
    .tmp-step-00000006/       a save in progress (or one killed mid-write)

A save writes everything into ``.tmp-step-N``, fsyncs the files and the
directory, then ``os.rename``s it to ``step-N`` (atomic on POSIX) and finally
replaces ``latest`` through a temp file + ``os.replace``. A process killed at
any point leaves either the old ``latest`` pointing at a complete checkpoint,
or the new one: never a half-written directory that ``load_checkpoint`` would
accept. Leftover ``.tmp-*`` directories are removed by the next save.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from llm.seeding import rng_state

__all__ = [
    "begin_checkpoint",
    "commit_checkpoint",
    "save_run",
    "load_checkpoint",
    "load_weights",
    "resolve_checkpoint",
    "list_checkpoints",
    "STATE_FILE",
]

STATE_FILE = "trainer_state.pt"
_COMPLETE = "COMPLETE"
_LATEST = "latest"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def _fsync_path(path: Path) -> None:
    """fsync a file or a directory so a rename that follows cannot be reordered before the data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


def list_checkpoints(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """Finished checkpoints (step, path) under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / _COMPLETE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def begin_checkpoint(root: str | os.PathLike, step: int) -> Path:
    """Create the empty temp directory ``root/.tmp-step-N`` a save writes into (stale ones are removed first).

    Call on the main process only, then let every process write its files
    (e.g. sharded optimizer state) before ``commit_checkpoint``.
    """
    if int(step) != step or step < 0:
        raise ValueError(f"step={step} must be a non-negative integer")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-step-*"):  # left by a process killed mid-save
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-step-{int(step):08d}"
    tmp.mkdir()
    return tmp


def commit_checkpoint(
    root: str | os.PathLike,
    step: int,
    *,
    keep_last: int | None = None,
    before_commit: Callable[[Path], None] | None = None,
) -> Path:
    """Mark ``.tmp-step-N`` complete, fsync it, rename it to ``step-N``, move ``latest``, prune old ones."""
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last={keep_last} must be >= 1 or None")
    root = Path(root)
    name = f"step-{int(step):08d}"
    tmp, final = root / f".tmp-{name}", root / name
    (tmp / _COMPLETE).write_text(f"{int(step)}\n")
    _fsync_tree(tmp)
    if before_commit is not None:
        before_commit(tmp)

    if final.exists():  # re-saving the same step (e.g. after a resume): replace it
        old = root / f".tmp-old-{name}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_path(root)

    pointer_tmp = root / f".{_LATEST}.tmp"
    pointer_tmp.write_text(name + "\n")
    _fsync_path(pointer_tmp)
    os.replace(pointer_tmp, root / _LATEST)
    _fsync_path(root)

    if keep_last is not None:
        for _, path in list_checkpoints(root)[:-keep_last]:
            if path != final:
                shutil.rmtree(path, ignore_errors=True)
    return final


def save_run(run, step: int) -> Path:
    """The trainer's atomic checkpoint ``step-N`` of ``run`` (an ``llm.train.Run``): model/ (weights
    once, + tokenizer), trainer_state.pt, optimizer shards. Called on every process (collectives)."""
    from accelerate.utils import gather_object

    from llm.sharding import full_state_dict, is_sharded, save_sharded_optimizer

    acc, root = run.accelerator, run.output_dir / "checkpoints"
    if acc.is_main_process:
        begin_checkpoint(root, step)
    acc.wait_for_everyone()
    tmp = root / f".tmp-step-{step:08d}"
    sharded = is_sharded(run.model)
    weights = full_state_dict(run.model) if sharded or acc.is_main_process else None  # collective when sharded
    rng_states = gather_object([rng_state()])
    if sharded:  # every process writes its own shard: the checkpoint dir must be on a shared filesystem
        save_sharded_optimizer(run.model, run.optimizer, tmp / "optimizer")
    if acc.is_main_process:
        state = {
            "step": step,
            "config": asdict(run.cfg),
            "optimizer": None if sharded else run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "estimator": run.estimator.state_dict(),
            "sampler": run.sampler.state_dict(),
            "rng": rng_states,
        }
        torch.save(state, tmp / STATE_FILE)
        run.unwrapped.save_pretrained(tmp / "model", state_dict=weights)
        run.tokenizer.save_pretrained(tmp / "model")
    acc.wait_for_everyone()
    if acc.is_main_process:
        commit_checkpoint(root, step, keep_last=run.cfg.keep_last)
    acc.wait_for_everyone()
    return root / f"step-{step:08d}"


def load_weights(model: torch.nn.Module, directory: str | os.PathLike) -> None:
    """Load a ``save_pretrained`` export (``*.safetensors``) into ``model`` in place.

    Keys the export omits must be tied to a loaded tensor (e.g. SmolLM2's
    lm_head = embed_tokens, which safetensors stores once); anything else
    missing or unexpected is an error naming the keys.
    """
    from safetensors.torch import load_file

    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {directory}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    current = model.state_dict()
    loaded_storage = {current[k].data_ptr() for k in state if k in current}
    untied = [k for k in missing if current[k].data_ptr() not in loaded_storage]
    if untied or unexpected:
        raise ValueError(
            f"weights in {directory} do not fit the model: missing {untied[:5]}, unexpected {unexpected[:5]}"
        )


def resolve_checkpoint(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Turn ``"latest"``, a checkpoint root or a ``step-N`` directory into a finished checkpoint path.

    ``"latest"`` reads ``root/latest``; if that pointer is missing or names an
    incomplete directory, the newest complete ``step-N`` is used instead.
    """
    if str(spec) == "latest":
        if root is None:
            raise ValueError("resume='latest' needs the checkpoint root (output_dir/checkpoints)")
        root = Path(root)
        pointer = root / _LATEST
        if pointer.is_file():
            candidate = root / pointer.read_text().strip()
            if (candidate / _COMPLETE).is_file():
                return candidate
        found = list_checkpoints(root)
        if not found:
            raise FileNotFoundError(f"resume='latest' but no finished checkpoint under {root}")
        return found[-1][1]
    path = Path(spec)
    if (path / _COMPLETE).is_file():
        return path
    if path.is_dir() and ((path / _LATEST).is_file() or list_checkpoints(path)):
        return resolve_checkpoint("latest", path)
    raise FileNotFoundError(f"resume={str(spec)!r} is not a finished checkpoint directory (no {_COMPLETE} marker)")


def load_checkpoint(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> tuple[Path, dict[str, Any]]:
    """Load a finished checkpoint; returns (its directory, the saved state dict)."""
    path = resolve_checkpoint(spec, root)
    # weights_only=False: the state holds numpy RNG tuples and the config dict we wrote ourselves.
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    return path, state
