"""Shared test set-up. pytest puts this folder on sys.path, so the helper modules beside this file
(tiny.py, two_process_launch.py, sandbox_reference.py, compare_fixtures.py) import by name from
every tests/ subfolder; the fixtures below hand the expensive pieces out once.

* ``tiny_tokenizer`` (session): the SmolLM2 tokenizer, loaded once;
* ``tiny_model``: a fresh tiny random Llama on it (``tiny.tiny_model``);
* ``tiny_args``: ``tiny.tiny_args``, the flags of a seconds-long training run;
* ``update_setup``: ``tiny.update_setup``, a model + optimizer + hand-made batch for ``ppo_update``;
* ``two_process_launch``: ``two_process_launch.launch_two_cpu_processes`` (2 gloo ranks);
* every test that imported accelerate finds its process-wide state reset afterwards.
"""

from __future__ import annotations

import sys

import pytest
import tiny


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """In-process training runs each build their own Accelerator: reset the singletons after each test."""
    yield
    if "accelerate.state" in sys.modules:
        tiny.reset_accelerate_state()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return tiny.tokenizer()


@pytest.fixture
def tiny_model(tiny_tokenizer):
    return tiny.tiny_model(seed=0)


@pytest.fixture
def tiny_args():
    return tiny.tiny_args


@pytest.fixture
def update_setup(tiny_tokenizer):
    return tiny.update_setup


@pytest.fixture
def two_process_launch():
    from two_process_launch import launch_two_cpu_processes

    return launch_two_cpu_processes
