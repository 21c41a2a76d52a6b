"""llm (riskrl): accelerate RLVR trainer (train.py) with its model, data, reward and evaluation helpers.

Submodules are imported explicitly (``from llm.model import ...``); importing the
package itself stays free of torch/transformers so reward worker processes start fast.
"""
