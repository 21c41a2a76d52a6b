"""Sharded policies (FSDP) where they differ from DDP: generation, the full weights, the optimizer state.

Two ways a policy ends up sharded:

* ``fsdp: true`` in the train config: the trainer applies torch's FSDP2
  ``fully_shard`` itself (each decoder layer, then the root), with any
  launcher. This is the path tested here, on CPU with gloo
  (``tests/llm/test_llm_fsdp.py``): accelerate only builds FSDP on accelerators,
  never on CPU.
* an accelerate FSDP config (``llm/accelerate_configs/fsdp.yaml``) on GPUs:
  ``accelerator.prepare`` wraps the model (FSDP1 or FSDP2). The same helpers
  below handle it, but that path is untested here (no GPU).

Every function is a no-op / plain call for an unsharded (single or DDP) model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

__all__ = [
    "shard_model",
    "is_sharded",
    "full_params_for_generation",
    "full_state_dict",
    "save_sharded_optimizer",
    "load_sharded_optimizer",
]


def _fsdp2_modules(model: torch.nn.Module) -> list:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def _is_fsdp1(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FullyShardedDataParallel

    return any(isinstance(m, FullyShardedDataParallel) for m in model.modules())


def is_sharded(model: torch.nn.Module) -> bool:
    return bool(_fsdp2_modules(model)) or _is_fsdp1(model)


def shard_model(model: torch.nn.Module) -> torch.nn.Module:
    """FSDP2 in place: every block named in ``model._no_split_modules`` (the decoder layers), then the root.

    The root's own parameters (embeddings, final norm, lm_head) form one group,
    each decoder layer another, so at most one layer's full weights exist
    outside the forward/backward of that layer.
    """
    from torch.distributed.fsdp import fully_shard

    block_names = set(getattr(model, "_no_split_modules", None) or [])
    blocks = [m for m in model.modules() if type(m).__name__ in block_names]
    if not blocks:
        raise ValueError(
            f"fsdp: found no decoder layers to shard in {type(model).__name__} "
            f"(_no_split_modules={sorted(block_names)})"
        )
    for block in blocks:
        fully_shard(block)
    fully_shard(model)
    return model


@contextlib.contextmanager
def full_params_for_generation(model: torch.nn.Module, unwrapped: torch.nn.Module | None = None):
    """Every rank holds the full weights inside the block, the shards again after it; yields the module to sample from.

    ``unwrapped`` is ``accelerator.unwrap_model(model)`` (the HF model under a
    DDP/FSDP1 wrapper); it is what the block yields.

    FSDP2: all groups are unsharded up front (one all-gather each, the same
    collectives on every rank) and kept unsharded through every forward, so
    ranks may then run different numbers of decoding steps without a
    collective getting out of step. FSDP1 (accelerate on GPU, untested here):
    the root's parameters (embeddings, lm_head) are summoned, the decoder
    layers gather themselves, and ``generate`` is told to keep ranks in step.
    """
    groups = _fsdp2_modules(model)
    if groups:
        for group in groups:
            group.set_reshard_after_forward(False)
        for group in groups:
            group.unshard()
        try:
            yield unwrapped if unwrapped is not None else model
        finally:
            for group in groups:
                group.reshard()
                group.set_reshard_after_forward(True)
    elif _is_fsdp1(model):
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        inner = unwrapped if unwrapped is not None else (model.module if isinstance(model, FSDP) else model)
        with FSDP.summon_full_params(model, writeback=False, recurse=False):
            inner._is_fsdp_managed_module = True  # transformers then generates with synced_gpus=True
            try:
                yield inner
            finally:
                del inner._is_fsdp_managed_module
    else:
        yield unwrapped if unwrapped is not None else model


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) weights on CPU: on the main process for a sharded model, on every process otherwise.

    Collective for a sharded model: every process must call it.
    """
    if not is_sharded(model):
        return {k: v.detach().cpu() for k, v in getattr(model, "module", model).state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def _raw(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps the torch one


def save_sharded_optimizer(model, optimizer, directory: str | Path) -> None:
    """Each process writes its own optimizer shard under ``directory`` (torch.distributed.checkpoint). Collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    dcp.save({"optimizer": get_optimizer_state_dict(model, _raw(optimizer))}, checkpoint_id=str(directory))


def load_sharded_optimizer(model, optimizer, directory: str | Path) -> None:
    """Restore what ``save_sharded_optimizer`` wrote, re-sharded to this run's processes. Collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    state = {"optimizer": get_optimizer_state_dict(model, _raw(optimizer))}  # the layout to load into
    dcp.load(state, checkpoint_id=str(directory))
    set_optimizer_state_dict(model, _raw(optimizer), state["optimizer"])


def deepspeed_batch_config(cfg, num_processes: int) -> dict:
    """DeepSpeed's batch keys from the trainer's settings (accelerate cannot infer "auto" without a dataloader).

    One optimizer step consumes one mini-batch: prompts_per_step / processes * group_size rows per
    process split into mini_batches, each of grad_accum micro-batches, so
    train_batch_size = micro * grad_accum * processes is the global mini-batch in completions.
    """
    rows = cfg.prompts_per_step // num_processes * cfg.group_size
    micro = rows // (cfg.mini_batches * cfg.grad_accum)
    return {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": micro * cfg.grad_accum * num_processes,
        "gradient_clipping": cfg.max_grad_norm,
    }
