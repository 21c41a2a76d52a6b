"""llm.evaluate: pass@k / avg@n / mean reward against brute-force enumeration, CLI outputs, bad input."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from llm.data import Example
from llm.eval_generators import HFGenerator
from llm.evaluate import EvalConfig, evaluate, format_table, main, parse_args
from llm.model import SMOLLM2, ModelNotFoundError, build_tiny_model, load_tokenizer
from llm.rewards import RewardPipeline

N = 5
KS = (1, 2, 3, 5)
# correctness of sample j for question i: every count 0..5 and different positions appear
PATTERN = [
    [0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0],
    [0, 0, 1, 0, 1],
    [1, 1, 0, 1, 0],
    [0, 1, 1, 1, 1],
    [1, 1, 1, 1, 1],
]


def _examples():
    return [
        Example(id=f"q{i}", question=f"question {i}", answer=str(10 + i), source="stub") for i in range(len(PATTERN))
    ]


def _stub_generate(examples, n):
    """Completion j of question i is right iff PATTERN[i][j]; every third wrong one has no box at all."""
    out = []
    for example in examples:
        i = int(example.id[1:])
        row = []
        for j in range(n):
            if PATTERN[i][j]:
                row.append(f"so the answer is \\boxed{{{example.answer}}}")
            elif (i + j) % 3 == 0:
                row.append("I am not sure")
            else:
                row.append("\\boxed{-999}")
        out.append(row)
    return out


def _brute_force_pass_at_k(correct_rows, k):
    """Fraction of k-subsets holding at least one correct sample, averaged over questions."""
    per_question = []
    for row in correct_rows:
        subsets = list(itertools.combinations(range(len(row)), k))
        per_question.append(sum(any(row[j] for j in subset) for subset in subsets) / len(subsets))
    return sum(per_question) / len(per_question)


def test_pass_at_k_matches_subset_enumeration():
    with RewardPipeline([("math_verify", 1.0), ("format", 0.5)], num_workers=0) as rewards:
        # batch_size 4 splits the 6 questions into uneven chunks, exercising the bookkeeping
        results, records = evaluate(
            {"stub": _examples()}, _stub_generate, n=N, ks=KS, reward_pipeline=rewards, batch_size=4
        )
    metrics = results["stub"]
    for k in KS:
        # float64 lgamma ratios vs exact rational enumeration: agreement to ~1e-15
        assert metrics[f"pass@{k}"] == pytest.approx(_brute_force_pass_at_k(PATTERN, k), abs=1e-12), k
    flat = [value for row in PATTERN for value in row]
    assert metrics[f"avg@{N}"] == pytest.approx(sum(flat) / len(flat), abs=1e-12)
    completions = [c for row in _stub_generate(_examples(), N) for c in row]
    has_box = ["\\boxed" in c for c in completions]
    assert metrics["boxed_rate"] == pytest.approx(sum(has_box) / len(has_box), abs=1e-12)
    # every boxed completion has exactly one box, so format = has_box
    expected_reward = sum(c + 0.5 * b for c, b in zip(flat, has_box)) / len(flat)
    assert metrics["mean_reward"] == pytest.approx(expected_reward, abs=1e-6)  # float32 reward tensors
    assert metrics["num_questions"] == len(PATTERN) and metrics["reward_errors"] == {"math_verify": 0, "format": 0}
    assert metrics["reward_means"]["math_verify"] == pytest.approx(sum(flat) / len(flat), abs=1e-12)
    assert metrics["reward_means"]["format"] == pytest.approx(sum(has_box) / len(has_box), abs=1e-12)
    assert [r["correct"] for r in records] == flat
    assert [(r["id"], r["sample"]) for r in records[:6]] == [("q0", j) for j in range(5)] + [("q1", 0)]


def test_any_binary_reward_can_define_accuracy(tmp_path):
    out = tmp_path / "eval"
    results = main(
        [
            "--datasets",
            "fixture:gsm8k_test",
            "--limit",
            "6",
            "--n",
            str(N),
            "--k",
            "2",
            "--out",
            str(out),
            "--reward-workers",
            "0",
            "--accuracy-reward",
            "format",
        ],
        generate_fn=_stub_generate_by_position,
    )
    boxed = [[1.0 if "\\boxed" in c else 0.0 for c in row] for row in _stub_generate_by_position([None] * 6, N)]
    assert results["fixture:gsm8k_test"]["pass@2"] == pytest.approx(_brute_force_pass_at_k(boxed, 2), abs=1e-12)


def _stub_generate_by_position(examples, n):
    return [[("\\boxed{1}" if (i * n + j) % 4 == 0 else "no box") for j in range(n)] for i in range(len(examples))]


def test_generator_returning_wrong_shape_is_rejected():
    with RewardPipeline([("math_verify", 1.0)], num_workers=0) as rewards:
        with pytest.raises(ValueError, match="5 completions for each"):
            evaluate({"stub": _examples()}, lambda ex, n: [["x"]] * len(ex), n=N, ks=(1,), reward_pipeline=rewards)


def test_cli_writes_json_table_and_samples(tmp_path, capsys):
    out = tmp_path / "eval"
    data = tmp_path / "stub.jsonl"
    data.write_text(
        "\n".join(json.dumps({"id": e.id, "question": e.question, "answer": e.answer}) for e in _examples())
    )
    argv = ["--datasets", str(data), "--n", str(N), "--k", "1,3", "--out", str(out), "--reward-workers", "0"]
    results = main(argv, generate_fn=_stub_generate)
    saved = json.loads((out / "results.json").read_text())
    assert saved["results"][str(data)]["pass@3"] == pytest.approx(_brute_force_pass_at_k(PATTERN, 3), abs=1e-12)
    assert saved["config"]["k"] == [1, 3] and saved["config"]["n"] == N
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == len(PATTERN) * N
    table = (out / "results.md").read_text()
    assert table.strip() == format_table(results, [1, 3], N)
    assert table.splitlines()[0] == "| dataset | questions | pass@1 | pass@3 | avg@5 | mean_reward | boxed_rate |"
    assert table in capsys.readouterr().out


def test_hf_generator_with_tiny_model_is_seeded():
    tokenizer = load_tokenizer(SMOLLM2)
    model = build_tiny_model(tokenizer, seed=0)
    config = EvalConfig(max_new_tokens=4, seed=11)
    examples = [
        Example(id="a", question="1+1?", answer="2", source="t"),
        Example(id="b", question="Hi", answer="0", source="t"),
    ]
    first = HFGenerator(model, tokenizer, config)(examples, 3)
    again = HFGenerator(model, tokenizer, config)(examples, 3)
    assert [len(group) for group in first] == [3, 3] and all(isinstance(c, str) for g in first for c in g)
    assert first == again
    # 4 new tokens at most: re-encoding a completion never yields more than a few tokens per generated one
    assert all(0 < len(tokenizer(c).input_ids) <= 4 * 4 for g in first for c in g if c)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--k", "1,16", "--n", "8"], "k=16 must be <= n=8"),
        (["--k", "0"], "k=0"),
        (["--n", "0"], "n=0"),
        (["--temperature", "0"], "temperature"),
        (["--top-p", "1.5"], "top_p"),
        (["--dtype", "float33"], "dtype"),
        (["--rewards", "format=1"], "math_verify"),
        (["--limit", "0"], "limit"),
    ],
)
def test_bad_arguments(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_args(argv)


def test_dataset_and_model_errors_come_before_generation(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    with pytest.raises(ValueError, match="bad.jsonl: row 1 is missing the answer"):
        main(["--model", str(tmp_path / "no_model"), "--datasets", str(bad), "--out", str(tmp_path / "o")])
    with pytest.raises(ModelNotFoundError, match="no_model"):
        main(
            [
                "--model",
                str(tmp_path / "no_model"),
                "--datasets",
                "fixture:gsm8k_test",
                "--limit",
                "1",
                "--n",
                "1",
                "--k",
                "1",
                "--out",
                str(tmp_path / "o"),
                "--reward-workers",
                "0",
            ]
        )


@pytest.mark.slow
def test_smollm2_eval_runs_and_is_consistent(tmp_path):
    out = tmp_path / "eval"
    results = main(
        [
            "--model",
            SMOLLM2,
            "--datasets",
            "fixture:gsm8k_test",
            "--limit",
            "2",
            "--n",
            "2",
            "--k",
            "1,2",
            "--max-new-tokens",
            "64",
            "--out",
            str(out),
        ]
    )
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    rows = [[s["correct"] for s in samples if s["id"] == qid] for qid in dict.fromkeys(s["id"] for s in samples)]
    for k in (1, 2):
        assert results["fixture:gsm8k_test"][f"pass@{k}"] == pytest.approx(_brute_force_pass_at_k(rows, k), abs=1e-12)
    assert torch.tensor([len(r) for r in rows]).eq(2).all()


def test_auto_backend_is_vllm_only_when_installed(monkeypatch):
    import importlib.util

    from llm import evaluate as module

    real = importlib.util.find_spec
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: object() if name == "vllm" else real(name))
    assert module.resolve_backend("auto") == "vllm" and module.resolve_backend("hf") == "hf"
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None if name == "vllm" else real(name))
    assert module.resolve_backend("auto") == "hf" and module.resolve_backend("vllm") == "vllm"
    assert parse_args([]).backend == "auto"


def test_generation_is_batched_across_questions():
    calls = []

    def recording(examples, n):
        calls.append(len(examples))
        return _stub_generate(examples, n)

    with RewardPipeline([("math_verify", 1.0)], num_workers=0) as rewards:
        evaluate({"stub": _examples()}, recording, n=N, ks=KS, reward_pipeline=rewards, batch_size=4)
    assert calls == [4, 2]  # 6 questions: two generate calls, not six
    assert EvalConfig().batch_size > 1


@pytest.mark.parametrize(
    "dataset, max_new_tokens, expected_dataset",
    [
        ("gsm8k", 256, "gsm8k_test"),
        ("reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1", 64, None),
    ],
)
def test_train_summary_suggests_a_small_heldout_evaluation(tmp_path, dataset, max_new_tokens, expected_dataset):
    import shlex

    from llm.config import TrainConfig
    from llm.run_summary import EVAL_TOKEN_BUDGET, heldout_eval_command

    cfg = TrainConfig(dataset=dataset, max_new_tokens=max_new_tokens, output_dir=str(tmp_path / "run x"), seed=3)
    words = shlex.split(heldout_eval_command(cfg))
    assert words[:3] == ["python", "-m", "llm.evaluate"]
    config = parse_args(words[3:])  # the suggested command is valid CLI input
    assert config.model == str(tmp_path / "run x")
    assert config.datasets == [expected_dataset or dataset]
    if expected_dataset is None:  # a generated task: another generator seed than training's
        assert config.seed != cfg.seed
    # generated tokens within the budget, and at least 4 questions
    assert 4 <= config.limit and config.limit * config.n * config.max_new_tokens <= max(
        EVAL_TOKEN_BUDGET, 4 * config.n * config.max_new_tokens
    )
    assert config.max_new_tokens == max_new_tokens and config.temperature == cfg.temperature
