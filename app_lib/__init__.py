"""Helpers behind ``app.py``: estimator choices from the registry, data adapters and Plotly figures.

Nothing here computes an advantage, a risk measure or a simulation step:
those come from ``theory`` and ``sandbox``; this package only builds the
inputs, reshapes the outputs into tidy DataFrames and draws them.
"""
