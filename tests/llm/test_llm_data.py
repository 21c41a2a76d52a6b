"""llm.data: dataset specs, field mapping, row-level errors, prompts, resumable sampling."""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction

import pytest

from llm.data import (
    DEFAULT_SYSTEM_PROMPT,
    DatasetNotFoundError,
    Example,
    PromptSampler,
    fixtures_dir,
    format_prompt,
    load_dataset_examples,
)
from llm.model import SMOLLM2, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(SMOLLM2)


def _raw_rows(name):
    return [json.loads(line) for line in (fixtures_dir() / name).read_text().splitlines() if line.strip()]


def test_gsm8k_answer_is_the_number_after_hashes():
    examples = load_dataset_examples("fixture:gsm8k")
    rows = _raw_rows("gsm8k_train.jsonl")
    assert len(examples) == len(rows)
    for example, row in zip(examples, rows):
        final_line = row["answer"].strip().splitlines()[-1]
        assert final_line.startswith("#### ")
        assert example.answer == final_line[5:].replace(",", "")
        assert example.question == row["question"]
    assert len({e.id for e in examples}) == len(examples)
    assert examples[0].source == "gsm8k_train"


@pytest.mark.parametrize(
    "spec, file, question_key",
    [("fixture:math500", "math500_test.jsonl", "problem"), ("fixture:aime24", "aime24_test.jsonl", "problem")],
)
def test_competition_fields(spec, file, question_key):
    examples = load_dataset_examples(spec)
    for example, row in zip(examples, _raw_rows(file)):
        assert example.question == row[question_key]
        assert example.answer == str(row["answer"]).strip()


def test_amc23_float_answers_become_integers():
    examples = load_dataset_examples("fixture:amc23")
    rows = _raw_rows("amc23_test.jsonl")
    for example, row in zip(examples, rows):
        value = float(row["answer"])
        assert example.answer == (str(int(value)) if value.is_integer() else str(row["answer"]))
    assert examples[0].answer == "27"  # stored as 27.0 in the file


def test_data_dir_env_and_limit(monkeypatch, tmp_path):
    monkeypatch.setenv("RISKRL_DATA_DIR", str(fixtures_dir()))
    assert [e.answer for e in load_dataset_examples("gsm8k_test", limit=3)] == [
        e.answer for e in load_dataset_examples("fixture:gsm8k", split="test")[:3]
    ]
    assert len(load_dataset_examples("gsm8k", split="test")) == len(_raw_rows("gsm8k_test.jsonl"))
    monkeypatch.setenv("RISKRL_DATA_DIR", str(tmp_path))
    _hub_offline(monkeypatch)
    with pytest.raises(DatasetNotFoundError, match="RISKRL_DATA_DIR"):
        load_dataset_examples("math500")


def _hub_offline(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hugging Face Hub (offline)")

    monkeypatch.setattr(datasets, "load_dataset", offline)


# Hub records in each Hub dataset's own schema, made from the local fixtures (the field names differ
# from the local files': math-ai/amc23 has no 'problem', HuggingFaceH4/aime_2024 answers are strings).
def _hub_records(key):
    if key.startswith("gsm8k"):
        return [{"question": r["question"], "answer": r["answer"]} for r in _raw_rows(f"{key}.jsonl")]
    if key == "math500":
        return [
            {k: r[k] for k in ("problem", "solution", "answer", "subject", "level", "unique_id")}
            for r in _raw_rows("math500_test.jsonl")
        ]
    if key == "aime24":
        return [
            {
                "id": r["id"],
                "problem": r["problem"],
                "solution": r["solution"],
                "answer": str(r["answer"]),
                "url": r["url"],
                "year": 2024,
            }
            for r in _raw_rows("aime24_test.jsonl")
        ]
    return [
        {"id": r["id"], "question": r["question"], "answer": float(r["answer"]), "url": r["url"]}
        for r in _raw_rows("amc23_test.jsonl")
    ]


@pytest.mark.parametrize(
    "spec, split, key, hub_call",
    [
        ("gsm8k_test", None, "gsm8k_test", (("openai/gsm8k", "main"), {"split": "test"})),
        ("gsm8k", None, "gsm8k_train", (("openai/gsm8k", "main"), {"split": "train"})),
        ("math500", None, "math500", (("HuggingFaceH4/MATH-500",), {"split": "test"})),
        ("aime24", "test", "aime24", (("HuggingFaceH4/aime_2024",), {"split": "train"})),
        ("amc23", None, "amc23", (("math-ai/amc23",), {"split": "test"})),
    ],
)
def test_benchmarks_without_a_local_copy_come_from_the_hub(monkeypatch, tmp_path, spec, split, key, hub_call):
    import datasets

    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.Dataset.from_list(_hub_records(key))

    monkeypatch.setenv("RISKRL_DATA_DIR", str(tmp_path))  # empty: no local copy
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    examples = load_dataset_examples(spec, split=split, limit=3)
    assert calls == [hub_call]
    records = _hub_records(key)[:3]
    # independent field mapping: the question/problem text, the answer after '####' (GSM8K) or the number
    # without a trailing '.0' (amc23), and the record's own id where it has one
    for example, record in zip(examples, records, strict=True):
        assert example.question == record.get("question", record.get("problem"))
        answer = str(record["answer"])
        expected = answer.rsplit("####", 1)[1].strip().replace(",", "") if "####" in answer else answer
        expected = expected[:-2] if key == "amc23" and expected.endswith(".0") else expected
        assert example.answer == expected and example.source == key
        if "id" in record or "unique_id" in record:
            assert example.id == str(record.get("id", record.get("unique_id")))
    # a local copy wins: the Hub is not asked
    (tmp_path / "amc23_test.jsonl").write_text((fixtures_dir() / "amc23_test.jsonl").read_text())
    calls.clear()
    assert load_dataset_examples("amc23")[0].answer == "27" and calls == []


def test_offline_hub_error_names_the_local_path_and_the_hub_id(monkeypatch, tmp_path):
    monkeypatch.setenv("RISKRL_DATA_DIR", str(tmp_path))
    _hub_offline(monkeypatch)
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset_examples("gsm8k_test")
    message = str(error.value)
    assert str(tmp_path / "gsm8k_test.jsonl") in message and "openai/gsm8k" in message and "'main'" in message
    assert "ConnectionError" in message and "RISKRL_DATA_DIR" in message


def test_malformed_hub_rows_name_the_hub_id_and_row(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setenv("RISKRL_DATA_DIR", str(tmp_path))
    rows = [{"problem": "1+1?", "answer": "2"}, {"problem": "2+2?", "solution": "4"}]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_list(rows))
    with pytest.raises(ValueError, match=r"Hub HuggingFaceH4/MATH-500: row 2 is missing the answer field"):
        load_dataset_examples("math500")


@pytest.mark.parametrize(
    "spec, split, message",
    [
        ("gsm8k", "validation", "split='validation'"),
        ("math500", "train", "split='train'"),
        ("gsm8k_test", "train", "contradicts"),
        ("nonsense_benchmark", None, "unknown dataset"),
        ("fixture:nope", None, "unknown fixture"),
        ("", None, "non-empty"),
    ],
)
def test_bad_specs(spec, split, message):
    with pytest.raises(ValueError, match=message):
        load_dataset_examples(spec, split=split)


@pytest.mark.parametrize(
    "rows, row_number, field",
    [
        ([{"question": "a", "answer": "1"}, {"question": "b", "answer": "2"}, {"question": "c"}], 3, "answer"),
        ([{"question": "a", "answer": "1"}, {"answer": "2"}], 2, "question"),
        ([{"question": "a", "answer": ""}], 1, "answer"),
        ([{"problem": "a", "answer": "x #### "}], 1, "####"),
    ],
)
def test_malformed_row_error_names_file_row_and_field(tmp_path, rows, row_number, field):
    path = tmp_path / "my_data.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    with pytest.raises(ValueError) as error:
        load_dataset_examples(str(path))
    assert "my_data.jsonl" in str(error.value) and f"row {row_number}" in str(error.value) and field in str(error.value)


def test_invalid_json_and_missing_file(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n{"question": oops}\n')
    with pytest.raises(ValueError, match="broken.jsonl: row 2 is not valid JSON"):
        load_dataset_examples(str(path))
    with pytest.raises(DatasetNotFoundError, match="absent.jsonl"):
        load_dataset_examples(str(tmp_path / "absent.jsonl"))


def test_generic_jsonl_with_gsm8k_style_answers(tmp_path):
    path = tmp_path / "custom.jsonl"
    path.write_text(json.dumps({"prompt": "2+2?", "answer": "two and two\n#### 4"}) + "\n\n")
    [example] = load_dataset_examples(str(path))
    assert example == Example(id="custom:1", question="2+2?", answer="4", source="custom")


def test_reasoning_gym_arithmetic_answers_match_their_expressions():
    spec = "reasoning_gym:basic_arithmetic?min_terms=2&max_terms=2&max_digits=2&operators=+,-,*"
    examples = load_dataset_examples(spec, limit=20, seed=3)
    assert len(examples) == 20
    for example in examples:
        expression = example.metadata["expression"]
        assert set(expression) <= set("0123456789+-*() ")
        # independent evaluation with exact arithmetic
        assert Fraction(eval(expression)) == Fraction(example.answer)  # noqa: S307 - digits and + - * only
        assert example.metadata["source_dataset"] == "basic_arithmetic"
    assert [e.question for e in load_dataset_examples(spec, limit=20, seed=3)] == [e.question for e in examples]
    assert [e.question for e in load_dataset_examples(spec, limit=20, seed=4)] != [e.question for e in examples]


@pytest.mark.parametrize(
    "spec, message",
    [("reasoning_gym:no_such_task", "no_such_task"), ("reasoning_gym:basic_arithmetic?bogus=1", "bogus")],
)
def test_reasoning_gym_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        load_dataset_examples(spec, limit=2)


def test_format_prompt_uses_the_chat_template(tokenizer):
    prompt = format_prompt(tokenizer, "What is 6*7?")
    assert prompt == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "\\boxed{}" in DEFAULT_SYSTEM_PROMPT


def test_format_prompt_without_chat_template():
    class Plain:
        chat_template = None

    assert format_prompt(Plain(), "Q?", system_prompt="Box it.") == "Box it.\n\nQuestion: Q?\nAnswer:"


def _examples(n):
    return [Example(id=str(i), question=f"q{i}", answer=str(i), source="t") for i in range(n)]


def test_sampler_epochs_are_permutations_and_reshuffled():
    sampler = PromptSampler(_examples(10), batch_size=4, seed=1)
    drawn = [example.id for _ in range(10) for example in next(sampler)]  # 40 draws = 4 epochs exactly
    epochs = [drawn[i : i + 10] for i in range(0, 40, 10)]
    for epoch in epochs:
        assert Counter(epoch) == Counter(str(i) for i in range(10))
    assert len({tuple(epoch) for epoch in epochs}) == 4  # 4 distinct orders (chance of a repeat ~ 6/10!)
    assert sampler.state_dict()["epoch"] == 3 and sampler.state_dict()["position"] == 10


def test_sampler_resume_continues_exactly():
    examples = _examples(7)
    reference = PromptSampler(examples, batch_size=3, seed=5)
    for _ in range(4):
        next(reference)
    state = reference.state_dict()
    expected = [[e.id for e in next(reference)] for _ in range(5)]
    resumed = PromptSampler(examples, batch_size=3, seed=0)
    resumed.load_state_dict(state)
    assert [[e.id for e in next(resumed)] for _ in range(5)] == expected


def test_sampler_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        PromptSampler(_examples(3), batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        PromptSampler([], batch_size=2)
    sampler = PromptSampler(_examples(3), batch_size=2)
    with pytest.raises(ValueError, match="num_examples"):
        sampler.load_state_dict(PromptSampler(_examples(4), batch_size=2).state_dict())
