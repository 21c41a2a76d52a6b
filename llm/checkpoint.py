"""Atomic training checkpoints.

Layout under ``<output_dir>/checkpoints``::

    step-00000004/            a finished checkpoint (only ever appears complete)
        trainer_state.pt      optimizer (unsharded runs), scheduler, estimator, sampler, RNG, step, config
        model/                the weights, once: save_pretrained export + tokenizer (llm.evaluate reads it)
        optimizer/            sharded runs (FSDP): one optimizer-state file per process (torch.distributed.checkpoint)
        COMPLETE              marker written last inside the temp dir: a JSON manifest, the step and
                              every other file's size and sha256
    latest                    text file naming the newest finished step directory
    .tmp-step-00000006/       a save in progress (or one killed mid-write)

A save writes everything into ``.tmp-step-N``, fsyncs the files and the
directory, then ``os.rename``s it to ``step-N`` (atomic on POSIX) and finally
replaces ``latest`` through a temp file + ``os.replace``. A process killed at
any point leaves either the old ``latest`` pointing at a complete checkpoint,
or the new one: never a half-written directory that ``load_checkpoint`` would
accept. Leftover ``.tmp-*`` directories are removed by the next save.

A file damaged after the commit (truncated, bit-flipped, deleted) no longer
matches the manifest: ``resolve_checkpoint`` raises ``CheckpointCorruptError``
naming the file for an explicit checkpoint, and ``"latest"`` skips damaged
checkpoints for the newest intact one, saying so on stderr. A checkpoint whose
COMPLETE holds only the step number (written before manifests) is accepted
unverified.

A save that fails while writing (disk full, I/O error) is wrapped by
``checkpoint_write_guard``: the temp directory is removed, the previous
checkpoint is left as it was, and ``CheckpointWriteError`` says so.

Fault injection (tests only): ``RISKRL_FAULT_POINT=<point>[@<step>]`` makes the
process SIGKILL itself at that point of a save, e.g. ``commit:before-rename@4``.
Points: ``begin`` (temp dir created), ``commit:start`` (every payload file
written), ``commit:before-rename`` (manifest written and synced),
``commit:after-rename`` (``step-N`` exists, ``latest`` not yet moved),
``commit:after-latest`` (before pruning old checkpoints).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import sys
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
    "verify_checkpoint",
    "checkpoint_write_guard",
    "write_checkpoint_files",
    "CheckpointCorruptError",
    "CheckpointWriteError",
    "STATE_FILE",
    "FAULT_POINT_ENV",
    "FAULT_POINTS",
]

STATE_FILE = "trainer_state.pt"
_COMPLETE = "COMPLETE"
_LATEST = "latest"
_STEP_DIR = re.compile(r"^step-(\d+)$")
FAULT_POINT_ENV = "RISKRL_FAULT_POINT"
FAULT_POINTS = ("begin", "commit:start", "commit:before-rename", "commit:after-rename", "commit:after-latest")


class CheckpointCorruptError(ValueError):
    """A finished checkpoint whose files do not match its manifest; the message names the file."""


class CheckpointWriteError(OSError):
    """A save that failed while writing; the previous checkpoint is intact."""


def _fault_point(point: str, step: int) -> None:
    """Test hook: SIGKILL this process at ``point`` when RISKRL_FAULT_POINT names it (see the module doc)."""
    spec = os.environ.get(FAULT_POINT_ENV)
    if not spec:
        return
    name, _, at_step = spec.partition("@")
    if name not in FAULT_POINTS:
        raise ValueError(f"{FAULT_POINT_ENV}={spec!r}: point must be one of {FAULT_POINTS}")
    if name == point and (not at_step or int(at_step) == int(step)):
        os.kill(os.getpid(), signal.SIGKILL)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(directory: Path) -> dict[str, dict[str, int | str]]:
    """relative path -> {size, sha256} for every file under ``directory`` except the COMPLETE marker."""
    files = {}
    for dirpath, _, filenames in os.walk(directory):
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(directory).as_posix()
            if rel != _COMPLETE:
                files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return dict(sorted(files.items()))


def verify_checkpoint(path: str | os.PathLike) -> None:
    """Check every file of a finished checkpoint against the manifest in its COMPLETE marker.

    Raises ``CheckpointCorruptError`` naming the first missing, truncated or altered file
    (or an unreadable marker). A marker holding only the step (older checkpoints) is accepted as is.
    """
    path = Path(path)
    marker = path / _COMPLETE
    try:
        text = marker.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointCorruptError(f"checkpoint {path}: cannot read {marker} ({error})") from None
    if re.fullmatch(r"\d+\n?", text):  # pre-manifest checkpoint: nothing to verify against
        return
    try:
        manifest = json.loads(text)
        files = manifest["files"]
        if not isinstance(files, dict) or not isinstance(manifest["step"], int):
            raise TypeError("malformed manifest")
    except (ValueError, KeyError, TypeError):
        raise CheckpointCorruptError(
            f"checkpoint {path}: the manifest {marker} is damaged ({len(text)} bytes that are not a manifest)"
        ) from None
    for rel, expected in files.items():
        file = path / rel
        if not file.is_file():
            raise CheckpointCorruptError(f"checkpoint {path}: file {file} is missing (listed in {marker})")
        size = file.stat().st_size
        if size != expected["size"]:
            raise CheckpointCorruptError(
                f"checkpoint {path}: file {file} has {size} bytes, the manifest says {expected['size']} (truncated?)"
            )
        if _sha256(file) != expected["sha256"]:
            raise CheckpointCorruptError(
                f"checkpoint {path}: file {file} does not match its sha256 in the manifest (corrupted)"
            )


@contextlib.contextmanager
def checkpoint_write_guard(root: str | os.PathLike, step: int):
    """Wrap the writes of checkpoint ``step``: a failure (disk full, I/O error, a writer's RuntimeError)
    removes the temp directory and raises ``CheckpointWriteError`` naming the checkpoint, the free
    space and the intact previous checkpoint, instead of a library's internal message."""
    root = Path(root)
    tmp = root / f".tmp-step-{int(step):08d}"
    try:
        yield tmp
    except (OSError, RuntimeError) as error:
        try:
            free_bytes = shutil.disk_usage(root).free  # before the cleanup frees the partial files
        except OSError:
            free_bytes = None
        shutil.rmtree(tmp, ignore_errors=True)
        free = "free space unknown" if free_bytes is None else f"{free_bytes / 2**20:.1f} MiB were free"
        previous = list_checkpoints(root)
        kept = f"the previous checkpoint {previous[-1][1]} is intact" if previous else "no earlier checkpoint exists"
        no_space = getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error)
        full = " (disk full)" if no_space or (free_bytes is not None and free_bytes < 2**20) else ""
        raise CheckpointWriteError(
            f"could not write checkpoint step-{int(step):08d} under {root}{full}: {type(error).__name__}: {error}; "
            f"{free}; {kept}; free space and continue with --resume latest"
        ) from error


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
    _fault_point("begin", step)
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
    _fault_point("commit:start", step)
    with checkpoint_write_guard(root, step):
        (tmp / _COMPLETE).write_text(json.dumps({"step": int(step), "files": _manifest(tmp)}, indent=1) + "\n")
        _fsync_tree(tmp)
    _fault_point("commit:before-rename", step)
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
    _fault_point("commit:after-rename", step)

    pointer_tmp = root / f".{_LATEST}.tmp"
    pointer_tmp.write_text(name + "\n")
    _fsync_path(pointer_tmp)
    os.replace(pointer_tmp, root / _LATEST)
    _fsync_path(root)
    _fault_point("commit:after-latest", step)

    if keep_last is not None:
        for _, path in list_checkpoints(root)[:-keep_last]:
            if path != final:
                shutil.rmtree(path, ignore_errors=True)
    return final


def write_checkpoint_files(
    root: str | os.PathLike, step: int, state: dict[str, Any], write_extra: Callable[[Path], None] | None = None
) -> Path:
    """Write ``state`` to ``trainer_state.pt`` and let ``write_extra`` add files, inside the temp dir of
    ``begin_checkpoint``; under ``checkpoint_write_guard``, so a full disk is a clear error. Returns the temp dir."""
    with checkpoint_write_guard(root, step) as tmp:
        torch.save(state, tmp / STATE_FILE)
        if write_extra is not None:
            write_extra(tmp)
    return tmp


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

        def write_model(directory: Path) -> None:  # weights once, + tokenizer (llm.evaluate reads model/)
            run.unwrapped.save_pretrained(directory / "model", state_dict=weights)
            run.tokenizer.save_pretrained(directory / "model")

        write_checkpoint_files(root, step, state, write_model)  # disk full -> a clear error, last one intact
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
    """Turn ``"latest"``, a checkpoint root or a ``step-N`` directory into a finished, intact checkpoint path.

    ``"latest"`` tries ``root/latest`` first, then every complete ``step-N`` newest first, and
    returns the first whose files match its manifest; each damaged one it passes over is reported
    on stderr with the file at fault. An explicit ``step-N`` directory that is damaged raises
    ``CheckpointCorruptError`` naming the file.
    """
    if str(spec) == "latest":
        if root is None:
            raise ValueError("resume='latest' needs the checkpoint root (output_dir/checkpoints)")
        root = Path(root)
        candidates = []
        pointer = root / _LATEST
        if pointer.is_file():
            try:
                named = pointer.read_text().strip()
            except (OSError, UnicodeDecodeError):
                named = ""
            if _STEP_DIR.match(named) and (root / named / _COMPLETE).is_file():
                candidates.append(root / named)
            else:
                print(
                    f"[riskrl] {pointer} names no finished checkpoint ({named[:40]!r}); using the newest one",
                    file=sys.stderr,
                )
        candidates += [path for _, path in reversed(list_checkpoints(root)) if path not in candidates]
        if not candidates:
            raise FileNotFoundError(f"resume='latest' but no finished checkpoint under {root}")
        damaged = []
        for candidate in candidates:
            try:
                verify_checkpoint(candidate)
            except CheckpointCorruptError as error:
                damaged.append(str(error))
                print(f"[riskrl] skipping damaged checkpoint: {error}", file=sys.stderr)
                continue
            if damaged:
                print(
                    f"[riskrl] resume='latest': falling back to the newest intact checkpoint {candidate}",
                    file=sys.stderr,
                )
            return candidate
        raise CheckpointCorruptError(
            f"resume='latest': every checkpoint under {root} is damaged: " + "; ".join(damaged)
        )
    path = Path(spec)
    if (path / _COMPLETE).is_file():
        verify_checkpoint(path)
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
