"""The real-model comparison, one experiment in five parts: ``config`` (the YAML file and its
checks), ``experiment`` (training every method, evaluating, the command line), ``heldout``
(held-out sampling and pass@k), ``results`` (reading run folders, the simulator's prediction),
``report`` (tables, figures, the markdown page). Run it with ``python -m llm.compare``."""
