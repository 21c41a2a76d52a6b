"""llm.model: offline tokenizer/model resolution, atomic caches, the tiny test model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm import model as model_lib
from llm.model import (
    SMOLLM2,
    ModelNotFoundError,
    build_tiny_model,
    load_model_and_tokenizer,
    load_tokenizer,
    resolve_model_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(SMOLLM2)


def test_smollm2_tokenizer_is_ready_for_batched_generation(tokenizer):
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token is not None
    assert len(tokenizer) == 49152  # SmolLM2's published vocabulary size
    text = "What is 12 + 30? \\boxed{42}"
    assert tokenizer.decode(tokenizer(text).input_ids) == text
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")


def test_tiny_model_is_deterministic_and_leaves_global_rng_alone(tokenizer):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = build_tiny_model(tokenizer, seed=7)
    assert torch.equal(torch.rand(3), expected_next)  # init used its own RNG stream
    second = build_tiny_model(tokenizer, seed=7)
    other = build_tiny_model(tokenizer, seed=8)
    for (name, p1), p2 in zip(first.named_parameters(), second.parameters()):
        assert torch.equal(p1, p2), name
    assert not torch.equal(first.model.embed_tokens.weight, other.model.embed_tokens.weight)
    assert first.config.vocab_size == len(tokenizer)
    assert first.lm_head.weight.data_ptr() == first.model.embed_tokens.weight.data_ptr()  # tied
    # parameter count from the config's closed form: tied embedding + per layer
    # (4 attn + 3 mlp mats + 2 norms) + final norm
    h, v, layers = 64, len(tokenizer), 2
    per_layer = 4 * h * h + 3 * h * (4 * h) + 2 * h
    assert sum(p.numel() for p in first.parameters()) == v * h + layers * per_layer + h


def test_tiny_model_left_padding_does_not_change_next_token_logits(tokenizer):
    model = build_tiny_model(tokenizer, seed=0)
    short, long = "Hi", "Compute 3 + 4 and box it"
    batch = tokenizer([short, long], return_tensors="pt", padding=True)
    assert batch.attention_mask[0, 0] == 0  # the short prompt really is left-padded
    with torch.no_grad():
        batched = model(**batch).logits[:, -1]
        alone = model(**tokenizer([short], return_tensors="pt")).logits[:, -1]
    # fp32 attention with masked positions: only summation-order differences remain (~1e-6)
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"hidden_size": 63}, "hidden_size"),
        ({"num_heads": 0}, "num_heads"),
        ({"num_layers": -1}, "num_layers"),
        ({"hidden_size": 12, "num_heads": 4}, "head dim"),
    ],
)
def test_tiny_model_rejects_bad_shapes(tokenizer, kwargs, field):
    with pytest.raises(ValueError, match=field):
        build_tiny_model(tokenizer, **kwargs)


def test_local_directory_round_trip_gives_identical_logits(tokenizer, tmp_path):
    model = build_tiny_model(tokenizer, seed=3)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_model_and_tokenizer(str(tmp_path))
    assert loaded_tokenizer.padding_side == "left" and loaded_tokenizer.pad_token_id == tokenizer.pad_token_id
    assert loaded.generation_config.pad_token_id == tokenizer.pad_token_id
    ids = tokenizer(["2 + 2 = ?"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**ids).logits, model(**ids).logits, atol=0, rtol=0)


def test_resolve_model_path_errors_name_the_path(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(ModelNotFoundError, match="no_such_model"):
        resolve_model_path(str(missing))
    with pytest.raises(ValueError):  # bad input is also a ValueError
        resolve_model_path(str(missing))
    with pytest.raises(ModelNotFoundError, match="config.json"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="weights.gguf"):
        resolve_model_path(str(tmp_path / "weights.gguf"))
    with pytest.raises(ValueError, match="non-empty"):
        resolve_model_path("")
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_hub_ids_are_fetched_and_an_offline_failure_names_the_id(monkeypatch, tmp_path):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, **kwargs):
        calls.append((repo_id, allow_patterns))
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") == str(tmp_path / "snapshot")
    assert calls[0][0] == "HuggingFaceTB/SmolLM2-135M-Instruct" and "*.safetensors" in calls[0][1]

    def offline(repo_id, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model_path("some-org/some-model")
    message = str(error.value)
    assert "some-org/some-model" in message and "Hub id" in message and "ConnectionError" in message
    assert "smollm2-135m-instruct" in message  # the alias it is not


def test_missing_model_fails_before_any_weights_are_read(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_model_and_tokenizer(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="dtype"):
        load_model_and_tokenizer(SMOLLM2, dtype=torch.int64)


def test_failed_build_leaves_no_partial_cache(tmp_path):
    final = tmp_path / "models" / "broken"
    final.parent.mkdir(parents=True)

    def half_written(directory: Path) -> None:
        (directory / "config.json").write_text("{}")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        model_lib._build_atomically(final, ("config.json", "model.safetensors"), half_written, "test model")
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == []


RACING_BUILD = """
import os, sys, time
from pathlib import Path
from llm import model as model_lib

final, log = Path(sys.argv[1]), sys.argv[2]

def build(directory):
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    time.sleep(0.5)  # long enough that the other process arrives while this one builds
    (directory / "config.json").write_text("{}")

model_lib._build_atomically(final, ("config.json",), build, "race test")
"""


def test_two_processes_racing_build_the_cache_once(tmp_path):
    final, log = tmp_path / "models" / "raced", tmp_path / "builds.log"
    final.parent.mkdir(parents=True)
    processes = [
        subprocess.Popen([sys.executable, "-c", RACING_BUILD, str(final), str(log)], cwd=REPO_ROOT) for _ in range(2)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    assert len(log.read_text().split()) == 1
    assert (final / "config.json").read_text() == "{}"


@pytest.mark.slow
def test_smollm2_answers_a_trivial_sum_greedily():
    model, tokenizer = load_model_and_tokenizer(SMOLLM2)
    assert model.dtype == torch.float32
    assert getattr(model.config, "quantization_config", None) is None
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer([prompt], return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=20, do_sample=False)
    assert "5" in tokenizer.decode(out[0, ids.input_ids.shape[1] :])
