"""Prompt datasets: benchmark JSONL files, any JSONL file, or reasoning-gym tasks.

``load_dataset_examples(spec)`` accepts

* a benchmark name: ``gsm8k`` (train split unless ``split="test"``),
  ``gsm8k_train``, ``gsm8k_test``, ``math500``, ``aime24``, ``amc23`` - the local
  copy in the data directory (``$RISKRL_DATA_DIR``, default ``<repo>/../shared/data``)
  when it exists, otherwise the Hugging Face Hub copy the ecosystem uses
  (``HUB_BENCHMARKS``: ``openai/gsm8k`` config ``main``, ``HuggingFaceH4/MATH-500``,
  ``HuggingFaceH4/aime_2024``, ``math-ai/amc23``) through ``datasets.load_dataset``;
* ``fixture:<benchmark>`` - the few-row copies in ``tests/fixtures/`` (only when
  asked for explicitly, so a missing data directory is never papered over);
* ``reasoning_gym:<task>`` optionally with generator options as a query string,
  e.g. ``reasoning_gym:basic_arithmetic?max_terms=2&max_digits=2&size=2000``;
* a path to a ``.jsonl`` file whose rows have a question field (``question``,
  ``problem`` or ``prompt``) and an answer field (``answer`` or ``final_answer``;
  a GSM8K-style ``... #### 42`` answer keeps only what follows ``####``).

Every malformed row is a ``ValueError`` naming the file, the 1-based row number
and the missing field, raised before any model is loaded.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "BENCHMARKS",
    "Example",
    "DatasetNotFoundError",
    "HUB_BENCHMARKS",
    "data_dir",
    "fixtures_dir",
    "load_dataset_examples",
    "load_jsonl_examples",
    "load_hub_examples",
    "extract_gsm8k_answer",
    "format_prompt",
    "PromptSampler",
]

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful math assistant. Solve the problem step by step, "
    "then write the final answer inside \\boxed{}, for example \\boxed{42}."
)

_REPO_ROOT = Path(__file__).resolve().parents[1]

# benchmark name -> (file stem, question fields, answer field, id field) ; fields tried in order
_QUESTION_FIELDS = ("question", "problem", "prompt")
_ANSWER_FIELDS = ("answer", "final_answer")
_ID_FIELDS = ("id", "unique_id", "idx")
BENCHMARKS: dict[str, str] = {
    "gsm8k_train": "gsm8k_train.jsonl",
    "gsm8k_test": "gsm8k_test.jsonl",
    "math500": "math500_test.jsonl",
    "aime24": "aime24_test.jsonl",
    "amc23": "amc23_test.jsonl",
}
_SPLITS = {"gsm8k": ("train", "test"), "math500": ("test",), "aime24": ("test",), "amc23": ("test",)}
# benchmark key -> (Hub dataset id, config name, split): the ids TRL / open-r1 / verl recipes load.
# Rows are read with the same field names as the local files (question|problem, answer, id|unique_id).
HUB_BENCHMARKS: dict[str, tuple[str, str | None, str]] = {
    "gsm8k_train": ("openai/gsm8k", "main", "train"),
    "gsm8k_test": ("openai/gsm8k", "main", "test"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test"),
    "aime24": ("HuggingFaceH4/aime_2024", None, "train"),  # the Hub copy has one split, named train
    "amc23": ("math-ai/amc23", None, "test"),
}


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """A dataset file or directory that does not exist (also a ValueError: it is bad input)."""


@dataclass
class Example:
    """One prompt with its reference answer.

    ``metadata`` carries what a task-specific scorer needs beyond the answer
    string (reasoning-gym entries keep their generator metadata here).
    """

    id: str
    question: str
    answer: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


def data_dir() -> Path:
    """``$RISKRL_DATA_DIR`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("RISKRL_DATA_DIR")
    return Path(env).expanduser() if env else _REPO_ROOT.parent / "shared" / "data"


def fixtures_dir() -> Path:
    return _REPO_ROOT / "tests" / "fixtures"


def extract_gsm8k_answer(solution: str) -> str:
    """GSM8K solutions end with ``#### <number>``; thousands separators are dropped."""
    if "####" not in solution:
        return solution.strip()
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


def _answer_to_str(value: Any) -> str:
    # amc23 stores answers as floats (27.0); "27" is what a model writes and what a reader expects.
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _first_present(row: dict, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip() != "":
            return name
    return None


def _example_from_row(row: Any, where: str, row_number: int, source: str) -> Example:
    """One question/answer row (a JSONL line or a Hub record) -> Example; errors name ``where`` and the row."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: row {row_number} must be a JSON object, got {type(row).__name__}")
    question_field = _first_present(row, _QUESTION_FIELDS)
    if question_field is None:
        raise ValueError(f"{where}: row {row_number} is missing the question field (one of {list(_QUESTION_FIELDS)})")
    answer_field = _first_present(row, _ANSWER_FIELDS)
    if answer_field is None:
        raise ValueError(f"{where}: row {row_number} is missing the answer field (one of {list(_ANSWER_FIELDS)})")
    answer = _answer_to_str(row[answer_field])
    if "####" in answer:
        answer = extract_gsm8k_answer(answer)
    if not answer:
        raise ValueError(f"{where}: row {row_number} has an empty answer after '####'")
    id_field = _first_present(row, _ID_FIELDS)
    example_id = str(row[id_field]) if id_field else f"{source}:{row_number}"
    return Example(id=example_id, question=str(row[question_field]), answer=answer, source=source)


def load_jsonl_examples(path: str | os.PathLike, source: str | None = None, limit: int | None = None) -> list[Example]:
    """Reads a JSONL file of question/answer rows (see module docstring for the field names)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset file not found: {path}")
    source = source or path.stem
    examples: list[Example] = []
    with open(path, encoding="utf-8") as handle:
        for row_number, line in enumerate(handle, start=1):
            if limit is not None and len(examples) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: row {row_number} is not valid JSON ({error.msg})") from None
            examples.append(_example_from_row(row, str(path), row_number, source))
    if not examples:
        raise ValueError(f"{path}: no rows found")
    return examples


def load_hub_examples(key: str, limit: int | None = None, local_path: Path | None = None) -> list[Example]:
    """Benchmark ``key`` from the Hugging Face Hub (``HUB_BENCHMARKS``) via ``datasets.load_dataset``.

    Any failure to fetch it (offline, no ``datasets``, unknown id) is a
    DatasetNotFoundError saying where the local copy was looked for and which
    Hub id was tried; malformed rows are ValueErrors naming the Hub id and row.
    """
    repo, config, split = HUB_BENCHMARKS[key]
    hub = f"{repo}" + (f" (config {config!r})" if config else "") + f", split {split!r}"
    looked = f"no local copy at {local_path}; " if local_path is not None else ""
    try:
        import datasets

        rows = datasets.load_dataset(repo, config, split=split) if config else datasets.load_dataset(repo, split=split)
    except Exception as error:  # offline / missing package / Hub error: all mean "not available here"
        raise DatasetNotFoundError(
            f"benchmark {key!r}: {looked}tried the Hugging Face Hub {hub} and failed "
            f"({type(error).__name__}: {str(error)[:200]}); set RISKRL_DATA_DIR to a directory holding "
            f"{BENCHMARKS[key]} (or use 'fixture:{key.split('_')[0]}' for the tiny test copy)"
        ) from error
    examples = []
    for row_number, row in enumerate(rows, start=1):
        if limit is not None and len(examples) >= limit:
            break
        examples.append(_example_from_row(dict(row), f"Hub {repo}", row_number, key))
    if not examples:
        raise ValueError(f"benchmark {key!r}: Hub {hub} has no rows")
    return examples


def _benchmark_key(name: str, split: str | None) -> str:
    """Benchmark name (+ optional split) -> key of BENCHMARKS."""
    if name in BENCHMARKS:
        implied = "train" if name == "gsm8k_train" else "test"
        if split is not None and split != implied:
            raise ValueError(f"split={split!r} contradicts dataset name {name!r} (which is the {implied} split)")
        return name
    allowed = _SPLITS[name]
    split = split or allowed[0]
    if split not in allowed:
        raise ValueError(f"split={split!r} is not available for {name!r}; choose from {list(allowed)}")
    return f"{name}_{split}"


def _parse_option(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "," in value:
        return [item for item in value.split(",") if item]
    return value


def _reasoning_gym_examples(spec: str, limit: int | None, seed: int) -> list[Example]:
    try:
        import reasoning_gym
    except ImportError:
        raise ImportError("reasoning_gym datasets need the package: pip install reasoning-gym") from None
    task, _, query = spec.partition("?")
    if not task:
        raise ValueError(f"dataset spec {spec!r}: expected reasoning_gym:<task>, e.g. reasoning_gym:basic_arithmetic")
    options = {}
    for pair in filter(None, query.split("&")):
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"dataset spec {spec!r}: option {pair!r} must look like key=value")
        # unquote, not unquote_plus: '+' is an arithmetic operator here, not an encoded space
        options[unquote(key)] = _parse_option(unquote(value))
    size = int(options.pop("size", limit if limit is not None else 1000))
    if limit is not None:
        size = min(size, limit)
    if size < 1:
        raise ValueError(f"dataset spec {spec!r}: size={size} must be >= 1")
    try:
        dataset = reasoning_gym.create_dataset(task, size=size, seed=seed, **options)
    except TypeError as error:  # unknown generator option
        raise ValueError(f"dataset spec {spec!r}: invalid option for task {task!r}: {error}") from None
    except (ValueError, AssertionError) as error:  # unknown task; reasoning-gym validates options with assert
        raise ValueError(f"dataset spec {spec!r}: {error}") from None
    examples = []
    for index, entry in enumerate(dataset):
        metadata = dict(entry.get("metadata") or {})
        metadata.setdefault("source_dataset", task)
        examples.append(
            Example(
                id=f"{task}:{seed}:{index}",
                question=str(entry["question"]),
                answer=str(entry["answer"]),
                source=f"reasoning_gym:{task}",
                metadata=metadata,
            )
        )
    return examples


def load_dataset_examples(
    spec: str, split: str | None = None, limit: int | None = None, seed: int = 0
) -> list[Example]:
    """Examples for a dataset spec (module docstring); ``limit`` keeps the first N rows.

    ``seed`` seeds reasoning-gym generation; files are returned in file order
    (shuffling is ``PromptSampler``'s job).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"dataset spec must be a non-empty string, got {spec!r}")
    if limit is not None and (int(limit) != limit or limit < 1):
        raise ValueError(f"limit={limit} must be a positive integer or None")
    spec = spec.strip()
    if spec.startswith("reasoning_gym:"):
        if split is not None:
            raise ValueError(f"split={split!r} does not apply to reasoning_gym datasets")
        return _reasoning_gym_examples(spec[len("reasoning_gym:") :], limit, seed)
    if spec.startswith("fixture:"):
        name = spec[len("fixture:") :]
        if name not in BENCHMARKS and name not in _SPLITS:
            raise ValueError(f"unknown fixture {name!r}; choose from {sorted(set(BENCHMARKS) | set(_SPLITS))}")
        key = _benchmark_key(name, split)
        return load_jsonl_examples(fixtures_dir() / BENCHMARKS[key], source=key, limit=limit)
    name = spec.lower()
    if name in BENCHMARKS or name in _SPLITS:
        key = _benchmark_key(name, split)
        path = data_dir() / BENCHMARKS[key]
        if path.is_file():
            return load_jsonl_examples(path, source=key, limit=limit)
        return load_hub_examples(key, limit=limit, local_path=path)
    path = Path(spec).expanduser()
    if path.suffix in (".jsonl", ".json") or path.exists() or os.sep in spec:
        if split is not None:
            raise ValueError(f"split={split!r} does not apply to a file path ({spec})")
        return load_jsonl_examples(path, limit=limit)
    known = sorted(set(BENCHMARKS) | set(_SPLITS))
    raise ValueError(
        f"unknown dataset {spec!r}: use a .jsonl path, one of {known}, 'fixture:<name>' or 'reasoning_gym:<task>'"
    )


def format_prompt(tokenizer, question: str, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> str:
    """Chat-formatted prompt ending with the assistant turn's opening, ready for generation.

    Tokenizers without a chat template get a plain ``system / Question / Answer`` layout.
    """
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": question})
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix = f"{system_prompt}\n\n" if system_prompt else ""
    return f"{prefix}Question: {question}\nAnswer:"


class PromptSampler:
    """Endless batches of examples, reshuffled every epoch; exactly resumable.

    The order of epoch e is a permutation drawn from ``random.Random(seed + e)``,
    so (seed, epoch, position) is the whole state: a resumed sampler continues
    with the very next example. A batch that runs past the end of an epoch is
    completed from the next epoch's order (no example is dropped).
    """

    def __init__(self, examples: list[Example], batch_size: int, seed: int = 0):
        if len(examples) == 0:
            raise ValueError("examples must not be empty")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be a positive integer")
        self.examples = list(examples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 0
        self.position = 0
        self._order = self._epoch_order(0)

    def _epoch_order(self, epoch: int) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(self.seed + epoch).shuffle(order)
        return order

    def __iter__(self) -> Iterator[list[Example]]:
        return self

    def __next__(self) -> list[Example]:
        batch = []
        while len(batch) < self.batch_size:
            if self.position == len(self.examples):
                self.epoch += 1
                self.position = 0
                self._order = self._epoch_order(self.epoch)
            batch.append(self.examples[self._order[self.position]])
            self.position += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
            "num_examples": len(self.examples),
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["num_examples"]) != len(self.examples):
            raise ValueError(
                f"sampler state is for num_examples={state['num_examples']}, but the dataset has "
                f"{len(self.examples)} examples; resume with the same dataset"
            )
        position = int(state["position"])
        if not 0 <= position <= len(self.examples):
            raise ValueError(f"sampler state position={position} is outside [0, {len(self.examples)}]")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = position
        self.batch_size = int(state.get("batch_size", self.batch_size))
        self._order = self._epoch_order(self.epoch)
