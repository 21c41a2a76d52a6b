#!/usr/bin/env bash
# RiskPO or RS-GRPO with verl on GSM8K (train) / MATH-500 (validation), Qwen2.5-Math-1.5B, vLLM + FSDP.
#
#   bash examples/verl/run.sh riskpo                     # one node, 8 GPUs
#   bash examples/verl/run.sh rs_grpo trainer.save_freq=50   # any extra Hydra override
#   NNODES=2 bash examples/verl/run.sh riskpo            # 2 nodes x 8 GPUs (ray cluster started first, see docs/verl.md)
#
# Environment: MODEL (Hub id or local path), DATA (parquet folder), TRAIN / VAL (llm.data dataset specs
# or JSONL paths, e.g. TRAIN=/data/math_train.jsonl for MATH), NNODES, GPUS_PER_NODE.
# Needs riskrl installed with the verl extra on every node (pip install -e '.[verl]'), CUDA, vLLM.
set -euo pipefail
ALGO=${1:?usage: run.sh riskpo|rs_grpo [hydra overrides...]}
shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-$HOME/data/riskrl}
MODEL=${MODEL:-Qwen/Qwen2.5-Math-1.5B}
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}

if [ ! -f "$DATA/train.parquet" ]; then
    python "$ROOT/examples/verl/prepare_data.py" --train "${TRAIN:-gsm8k}" --val "${VAL:-math500}" --out "$DATA"
fi

# Fail now, not after the model loads, if verl does not discover the plug-in (verl only logs a
# failing plug-in at DEBUG level). The same entry point is what verl's Ray actors load.
python - <<'PY'
import sys

import verl  # noqa: F401  (imports the verl.plugins entry points)

module = sys.modules.get("llm.integrations.verl")
if module is None:
    raise SystemExit(
        "verl did not load the riskrl plug-in: run pip install -e '.[verl]' again, or export "
        "VERL_USE_EXTERNAL_MODULES=llm.integrations.verl (and pass it to the Ray actors' env)"
    )
module.check()
print("riskrl estimators registered in verl:", ", ".join(sorted(module.registered_names())))
PY

export RISKRL_VERL_REWARD="$ROOT/examples/verl/reward.py"
python -m verl.trainer.main_ppo \
    --config-path="$ROOT/examples/verl" --config-name="$ALGO" \
    data.train_files="$DATA/train.parquet" \
    data.val_files="$DATA/val.parquet" \
    actor_rollout_ref.model.path="$MODEL" \
    trainer.nnodes="$NNODES" \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    "$@"
