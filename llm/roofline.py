"""A roofline account of every training step: work done per step against the machine's measured peaks.

Two numbers say how close a step runs to what the hardware allows (nanoGPT's MFU line, for RL):

* **update** (forward + backward of the policy on the step's batch): compute-bound. Its FLOPs
  are counted from the model's shapes and the batch's real (padded) token counts:

      F_update = 3 · F_forward            (backward = 2 × forward: input and weight gradients)
      F_forward = 2 · B · S · P_matmul                  (every nn.Linear below the LM head)
                + 2 · B · K · V · h                     (LM head, only on the K kept positions)
                + 4 · B · L · H · S² · d                (QKᵀ and AV of every layer, full S × S)

  with B rows of S tokens, K = completion length + 1 (``logits_to_keep``), V the vocabulary,
  h the hidden size, L layers of H query heads of size d. This is the "6 × params × tokens"
  rule with the attention term and the LM head on completion positions only (Kaplan et al.
  2020, Chinchilla's appendix F); activation checkpointing's recompute is not counted
  (model FLOPs, as MFU). The no-grad old-policy / reference forwards add one F_forward each.

* **generation** (prefill + one forward per decoded token): at small batch, bound by memory
  bandwidth. Each forward reads every weight once (the input embedding only as gathered rows,
  unless it is tied to the LM head, which reads it whole) and the KV cache of every row:

      bytes(step t) = W + N · 2 · L · H_kv · d · (L_p + t) · e       (e = bytes per element)

  and does 2 · N · (P_matmul + V · h) + 4 · N · L · H · (L_p + t) · d FLOPs. The bound of a
  forward is max(bytes / bandwidth, FLOPs / matmul peak) — the roofline — and generation's
  bound is the sum over prefill and decode steps. "generation at Y % of the bound" is
  bound time / measured time.

The peaks are measured, not quoted: a square matmul (best of a few, in the policy's dtype)
and a large tensor copy (read + write bytes), once per machine, torch thread count, device
and dtype, cached in ``<cache_root>/peaks.json`` (``python -m llm.roofline --remeasure``
refreshes it; a probe taken while other jobs load the machine under-states the peak, which
over-states the fractions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

__all__ = [
    "ModelShapes",
    "Peaks",
    "GenerationCall",
    "RooflineAccount",
    "forward_flops",
    "update_flops",
    "generation_work",
    "measure_peaks",
    "peaks_cache_key",
]


# ----------------------------------------------------------------------------- shapes and formulas


@dataclass(frozen=True)
class ModelShapes:
    """What the FLOP and byte formulas need from a decoder-only transformer."""

    matmul_params: int  # weights of every nn.Linear except the LM head
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    weight_bytes: int  # bytes one forward reads: all parameters, the untied input embedding excluded

    @classmethod
    def of(cls, model: torch.nn.Module) -> ModelShapes:
        model = getattr(model, "module", model)
        config = model.config
        head = model.get_output_embeddings()
        embed = model.get_input_embeddings()
        matmul = sum(
            m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head
        )
        tied = head is not None and embed is not None and head.weight is embed.weight
        seen, weight_bytes = set(), 0
        for p in model.parameters():  # parameters() yields a tied tensor once
            if id(p) in seen or (embed is not None and p is embed.weight and not tied):
                continue
            seen.add(id(p))
            weight_bytes += p.numel() * p.element_size()
        heads = int(config.num_attention_heads)
        return cls(
            matmul_params=int(matmul),
            vocab_size=int(config.vocab_size),
            hidden_size=int(config.hidden_size),
            num_layers=int(config.num_hidden_layers),
            num_heads=heads,
            num_kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
            weight_bytes=int(weight_bytes),
        )

    def with_dtype_bytes(self, element_size: int, current: int) -> ModelShapes:
        """The same model with its weights stored at ``element_size`` bytes instead of ``current``."""
        return ModelShapes(**{**asdict(self), "weight_bytes": self.weight_bytes * element_size // current})


def forward_flops(shapes: ModelShapes, rows: int, seq_len: int, kept: int) -> int:
    """FLOPs of one forward over (rows, seq_len) tokens, the LM head on the last ``kept`` positions."""
    s = shapes
    linear = 2 * rows * seq_len * s.matmul_params
    head = 2 * rows * kept * s.vocab_size * s.hidden_size
    attention = 4 * rows * s.num_layers * s.num_heads * seq_len * seq_len * s.head_dim
    return linear + head + attention


def update_flops(
    shapes: ModelShapes, rows: int, seq_len: int, completion_len: int, *, epochs: int = 1, no_grad_forwards: int = 0
) -> int:
    """Forward + backward (3 × forward) per epoch, plus ``no_grad_forwards`` plain forwards."""
    one = forward_flops(shapes, rows, seq_len, completion_len + 1)
    return 3 * epochs * one + no_grad_forwards * one


def generation_work(
    shapes: ModelShapes, rows: int, prompt_len: int, new_tokens: int, kv_element_size: int
) -> list[tuple[int, int]]:
    """(bytes, FLOPs) of every forward of a padded batched generate: the prefill, then one per new token.

    The prefill produces the first token (LM head on the last position only); each later
    token needs one decode forward over the KV cache of everything before it.
    """
    s = shapes
    kv_per_position = rows * 2 * s.num_layers * s.num_kv_heads * s.head_dim * kv_element_size
    prefill_flops = forward_flops(shapes, rows, prompt_len, 1)
    work = [(s.weight_bytes + kv_per_position * prompt_len, prefill_flops)]  # KV written once
    for t in range(1, new_tokens):
        context = prompt_len + t
        flops = 2 * rows * (s.matmul_params + s.vocab_size * s.hidden_size)
        flops += 4 * rows * s.num_layers * s.num_heads * context * s.head_dim
        work.append((s.weight_bytes + kv_per_position * context, flops))
    return work


# ----------------------------------------------------------------------------- peaks


@dataclass
class Peaks:
    matmul_gflops: float  # best square matmul, this dtype and thread count
    copy_gbps: float  # best large tensor copy, bytes read + written per second
    key: str = ""


def peaks_cache_key(device: torch.device, dtype: torch.dtype) -> str:
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        cpu = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as handle:
                cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
        except OSError:
            pass
        where = f"{cpu}|threads={torch.get_num_threads()}"
    return f"{socket.gethostname()}|{device.type}|{where}|torch={torch.__version__}|{str(dtype).split('.')[-1]}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device: torch.device, repeats: int) -> float:
    """Best of ``repeats`` timings. On CPU each timing is the smaller of wall time and this process's CPU
    time over the threads torch uses: on a machine shared with other jobs the wall time counts the
    time the scheduler gave away, the CPU time only the cores' own work, so the probe still measures
    the hardware, not the load."""
    fn()  # warm-up: first-touch page faults, kernel selection
    _sync(device)
    threads = max(torch.get_num_threads(), 1)
    best = float("inf")
    for _ in range(repeats):
        began, cpu_began = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall = time.perf_counter() - began
        if device.type == "cpu":
            wall = min(wall, max((time.process_time() - cpu_began) / threads, 1e-9))
        best = min(best, wall)
    return best


def probe_peaks(device: torch.device, dtype: torch.dtype, *, n: int | None = None, copy_mib: int = 256) -> Peaks:
    """A square (n × n) @ (n × n) matmul and a ``copy_mib`` MiB copy, best of 5 each."""
    n = n or (8192 if device.type == "cuda" else 2048)
    with torch.no_grad():
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)
        matmul_s = _best_seconds(lambda: torch.mm(a, b, out=out), device, 5)
        numel = copy_mib * 2**20 // 4
        src = torch.ones(numel, device=device, dtype=torch.float32)
        dst = torch.empty_like(src)
        copy_s = _best_seconds(lambda: dst.copy_(src), device, 5)
    return Peaks(matmul_gflops=2 * n**3 / matmul_s / 1e9, copy_gbps=2 * numel * 4 / copy_s / 1e9)


def _cache_file() -> Path:
    from llm.model import cache_root

    return cache_root() / "peaks.json"


def measure_peaks(device=None, dtype: torch.dtype = torch.float32, *, remeasure: bool = False) -> Peaks:
    """This machine's peaks, probed once per (host, device, threads, torch, dtype) and cached."""
    device = torch.device(device or "cpu")
    key = peaks_cache_key(device, dtype)
    path = _cache_file()
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if key in cached and not remeasure:
        entry = cached[key]
        return Peaks(float(entry["matmul_gflops"]), float(entry["copy_gbps"]), key)
    peaks = probe_peaks(device, dtype)
    peaks.key = key
    cached[key] = {"matmul_gflops": peaks.matmul_gflops, "copy_gbps": peaks.copy_gbps, "measured_at": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(cached, indent=1))
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old or the new file, never half of one
    except OSError:  # a read-only cache still gets this run's numbers
        pass
    return peaks


# ----------------------------------------------------------------------------- the account a run keeps


@dataclass
class GenerationCall:
    """One batched generate as a rollout backend ran it (padded shapes: the work actually done)."""

    rows: int
    prompt_len: int
    new_tokens: int
    seconds: float
    element_size: int  # bytes per weight / KV element of the model that generated
    cpu_seconds: float = 0.0  # this process's CPU time during the call (0: not recorded)


@dataclass
class RooflineAccount:
    """Per-step achieved GFLOP/s and GB/s against the measured peaks; totals for the run summary."""

    shapes: ModelShapes
    element_size: int
    peaks: Peaks
    peaks_by_size: dict = field(default_factory=dict)  # element size -> Peaks (generation may run in bf16)
    history: list = field(default_factory=list)  # one dict of work and seconds per step

    @classmethod
    def for_model(cls, model, device=None) -> RooflineAccount:
        model = getattr(model, "module", model)
        param = next(model.parameters())
        device = torch.device(device or param.device)
        peaks = measure_peaks(device, param.dtype)
        account = cls(ModelShapes.of(model), param.element_size(), peaks)
        account.device = device
        account.peaks_by_size[param.element_size()] = peaks
        account._cpu_mark = time.process_time()
        return account

    def _peaks(self, element_size: int) -> Peaks:
        if element_size not in self.peaks_by_size:
            dtype = {2: torch.bfloat16, 4: torch.float32, 8: torch.float64}[element_size]
            self.peaks_by_size[element_size] = measure_peaks(getattr(self, "device", "cpu"), dtype)
        return self.peaks_by_size[element_size]

    def trainer_step(self, cfg, batch: dict, update_seconds: float, backend) -> dict[str, float]:
        """:meth:`step` for llm/train.py: PPO epochs and the no-grad forwards from the config, the
        backend's generate calls since the last step (taken from ``backend.calls``)."""
        cpu_now = time.process_time()
        cpu_step, self._cpu_mark = cpu_now - getattr(self, "_cpu_mark", cpu_now), cpu_now
        calls = list(getattr(backend, "calls", []))
        if hasattr(backend, "calls"):
            backend.calls.clear()
        on_policy = cfg.ppo_epochs == 1 and cfg.mini_batches == 1  # no old-log-prob forward (llm/update.py)
        extra = (0 if on_policy else 1) + (1 if cfg.kl_coef > 0 else 0)
        # The update's CPU time, approximately: the step's minus generation's (rewards, logging are small).
        update_cpu = (
            max(cpu_step - sum(c.cpu_seconds for c in calls), 0.0) if all(c.cpu_seconds for c in calls) else 0.0
        )
        metrics = self.step(
            batch, update_seconds, calls, epochs=cfg.ppo_epochs, no_grad_forwards=extra, update_cpu_seconds=update_cpu
        )
        # this process's CPU seconds since the previous step (steadier than wall time on a shared machine)
        metrics["time/step_cpu"] = cpu_step
        return metrics

    def step(
        self,
        batch: dict,
        update_seconds: float,
        calls: list[GenerationCall],
        *,
        epochs=1,
        no_grad_forwards=0,
        update_cpu_seconds: float = 0.0,
    ) -> dict[str, float]:
        """This step's roofline metrics (and its work, kept for the run summary)."""
        rows, prompt_len = batch["prompt_ids"].shape
        completion_len = batch["completion_ids"].shape[1]
        flops = update_flops(
            self.shapes,
            rows,
            prompt_len + completion_len,
            completion_len,
            epochs=epochs,
            no_grad_forwards=no_grad_forwards,
        )
        gen_bytes = gen_flops = bound = seconds = gen_cpu = 0.0
        for call in calls:
            shapes = self.shapes.with_dtype_bytes(call.element_size, self.element_size)
            peaks = self._peaks(call.element_size)
            for b, f in generation_work(shapes, call.rows, call.prompt_len, call.new_tokens, call.element_size):
                gen_bytes, gen_flops = gen_bytes + b, gen_flops + f
                bound += max(b / (peaks.copy_gbps * 1e9), f / (peaks.matmul_gflops * 1e9))
            seconds += call.seconds
            gen_cpu += call.cpu_seconds
        out = {
            "roofline/update_gflop": flops / 1e9,
            "roofline/update_gflops": flops / 1e9 / max(update_seconds, 1e-9),
            "roofline/update_frac_of_matmul_peak": flops / 1e9 / max(update_seconds, 1e-9) / self.peaks.matmul_gflops,
            "roofline/generate_gb": gen_bytes / 1e9,
            "roofline/generate_gbps": gen_bytes / 1e9 / max(seconds, 1e-9),
            "roofline/generate_gflops": gen_flops / 1e9 / max(seconds, 1e-9),
            "roofline/generate_bound_s": bound,
            "roofline/generate_frac_of_bound": bound / max(seconds, 1e-9),
            # The same, per CPU-second over torch's threads: what the cores did while this process ran
            # (on a machine shared with other jobs, the wall-time fractions also count the time given away).
            "roofline/update_frac_of_matmul_peak_cpu": _frac(flops / 1e9, update_cpu_seconds, self.peaks.matmul_gflops),
            "roofline/generate_frac_of_bound_cpu": _frac(bound, gen_cpu, 1.0),
            "roofline/matmul_peak_gflops": self.peaks.matmul_gflops,
            "roofline/copy_peak_gbps": self.peaks.copy_gbps,
        }
        self.history.append(
            {
                "update_flops": flops,
                "update_s": update_seconds,
                "gen_bytes": gen_bytes,
                "gen_flops": gen_flops,
                "gen_bound_s": bound,
                "gen_s": seconds,
                "update_cpu_s": update_cpu_seconds,
                "gen_cpu_s": gen_cpu,
            }
        )
        return out

    def summary(self, peak_memory_gb: float | None = None, on_cuda: bool = False) -> str:
        """The run summary's roofline line, over the steps after the first (warm-up) when there are several."""
        if not self.history:
            return "[riskrl] roofline: no step ran"
        steps = self.history[1:] or self.history
        t = {key: sum(h[key] for h in steps) for key in steps[0]}
        update_gflops = t["update_flops"] / 1e9 / max(t["update_s"], 1e-9)
        gen_gbps = t["gen_bytes"] / 1e9 / max(t["gen_s"], 1e-9)
        which = f"steps 2-{len(self.history)}" if len(self.history) > 1 else "step 1"
        line = (
            f"[riskrl] roofline ({which}): update at {update_gflops / self.peaks.matmul_gflops:.0%} of measured "
            f"matmul peak ({update_gflops:.0f} of {self.peaks.matmul_gflops:.0f} GFLOP/s); generation at "
            f"{t['gen_bound_s'] / max(t['gen_s'], 1e-9):.0%} of the bandwidth bound "
            f"({gen_gbps:.1f} GB/s moved vs {self.peaks.copy_gbps:.1f} GB/s measured copy bandwidth; "
            f"bound {t['gen_bound_s']:.1f} s, took {t['gen_s']:.1f} s)"
        )
        update_cpu = _frac(t["update_flops"] / 1e9, t["update_cpu_s"], self.peaks.matmul_gflops)
        gen_cpu = _frac(t["gen_bound_s"], t["gen_cpu_s"], 1.0)
        if update_cpu and gen_cpu:
            line += (
                f"\n[riskrl] roofline per CPU-second (the share of the cores this process got): update at "
                f"{update_cpu:.0%}, generation at {gen_cpu:.0%}"
            )
        if peak_memory_gb is not None:
            what = "peak accelerator memory (last step)" if on_cuda else "peak RSS"
            # peak_memory_gb is in GiB (2**30 bytes), as torch and ru_maxrss count; GB (1e9) beside it
            line += f"\n[riskrl] memory: {what} {peak_memory_gb:.2f} GiB ({peak_memory_gb * 2**30 / 1e9:.2f} GB)"
        return line


def _frac(work: float, cpu_seconds: float, peak: float) -> float:
    """work / (cpu_seconds / threads) / peak; 0 when no CPU time was recorded."""
    if cpu_seconds <= 0:
        return 0.0
    return work / (cpu_seconds / max(torch.get_num_threads(), 1)) / peak


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Measure (or show the cached) matmul and copy peaks of this machine")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--remeasure", action="store_true", help="probe again and overwrite the cached entry")
    args = parser.parse_args(argv)
    peaks = measure_peaks(args.device, getattr(torch, args.dtype), remeasure=args.remeasure)
    print(json.dumps(asdict(peaks), indent=1))


if __name__ == "__main__":
    main()
