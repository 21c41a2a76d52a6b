"""Where the trainer's resident memory goes: RSS sampled every 20 ms, attributed to the phase running.

    python benchmarks/profile_memory.py                      # the default run (default.yaml), 3 steps
    python benchmarks/profile_memory.py --steps 2 --out runs/profile_memory.json -- --max_new_tokens 32

Runs ``llm.train.train`` in this process with a psutil sampler thread, and wraps the
functions a step calls (model load, rollout ``generate``, the policy
update, the checkpoint save) so every sample is labelled with the innermost phase
that was running. Prints, per phase, the RSS on entry, the largest RSS seen while it
ran and the RSS on exit (GB), the process's peak RSS (``ru_maxrss``) and, as a
fraction, how much of that peak the weights + gradients + AdamW state account for
(4 copies of the parameters' bytes). Writes the samples and the table as JSON.

Memory is a property of this process, not of the machine's load: the figures repeat
on a shared machine (only the wall times in the samples do not).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

GB = 2**30


class Sampler:
    def __init__(self, period_s: float = 0.02):
        self.period_s, self.samples, self.stack = period_s, [], ["setup"]
        self.phases: dict[str, dict] = {}
        self._proc, self._stop = psutil.Process(), threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def rss(self) -> float:
        return self._proc.memory_info().rss / GB

    def _loop(self):
        while not self._stop.is_set():
            rss, phase = self.rss(), self.stack[-1]
            self.samples.append((time.perf_counter(), rss, phase))
            entry = self.phases.setdefault(phase, {"entry_gb": rss, "max_gb": rss, "exit_gb": rss, "calls": 0})
            entry["max_gb"] = max(entry["max_gb"], rss)
            self._stop.wait(self.period_s)

    @contextmanager
    def phase(self, name: str):
        entry = self.phases.setdefault(name, {"entry_gb": self.rss(), "max_gb": 0.0, "exit_gb": 0.0, "calls": 0})
        entry["calls"] += 1
        entry["max_gb"] = max(entry["max_gb"], self.rss())
        self.stack.append(name)
        try:
            yield
        finally:
            self.stack.pop()
            entry["exit_gb"] = self.rss()
            entry["max_gb"] = max(entry["max_gb"], entry["exit_gb"])

    def wrap(self, owner, attr: str, name: str):
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attr, wrapped)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "llm" / "configs" / "default.yaml"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="runs/profile_memory.json")
    parser.add_argument("overrides", nargs="*", help="extra llm/train.py flags after --")
    args = parser.parse_args()

    import torch

    import llm.collect
    import llm.rollout
    import llm.train
    from llm.config import TrainConfig

    sampler = Sampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.from_args(
            ["--config", args.config, "--steps", str(args.steps), "--output_dir", tmp, "--report_to", "none"]
            + args.overrides
        )
        sampler.wrap(llm.train, "load_policy", "load model")
        sampler.wrap(llm.rollout.HFGenerateBackend, "generate", "generate")
        sampler.wrap(llm.train, "ppo_update", "update")
        sampler.wrap(llm.train.Run, "save", "checkpoint")
        with sampler.phase("train (other)"):
            result = llm.train.train(cfg)
        sampler.stop()
        params = sum(p.numel() * p.element_size() for p in result.model.parameters()) / GB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB
    print(f"{'phase':18s} {'calls':>5s} {'entry GB':>9s} {'max GB':>7s} {'exit GB':>8s}")
    for name, e in sampler.phases.items():
        print(f"{name:18s} {e['calls']:5d} {e['entry_gb']:9.2f} {e['max_gb']:7.2f} {e['exit_gb']:8.2f}")
    print(
        f"peak RSS {peak:.2f} GB; parameters {params:.2f} GB, so weights + grads + AdamW = {4 * params:.2f} GB "
        f"= {4 * params / peak:.0%} of the peak"
    )
    out = {
        "settings": vars(args),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_gb": peak,
        "param_gb": params,
        "phases": sampler.phases,
        "samples": sampler.samples[::5],
        "last_metrics": result.metrics,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
