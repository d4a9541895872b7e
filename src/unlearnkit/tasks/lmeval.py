"""Four-choice accuracy scored by lm-evaluation-harness (``lm_eval`` 0.4), offline.

Each question set is written as a JSON-lines file next to a task YAML of our own (the format of
lm-eval's WMDP and MMLU tasks: "question\\nA. …\\nB. …\\nC. …\\nD. …\\nAnswer:", choices " A" … " D",
metric ``acc``), loaded through ``TaskManager(include_path=…, include_defaults=False)`` with the
``json`` builder of ``datasets`` (nothing is downloaded; its cache lives in the temporary directory).
The model object is wrapped as an lm-eval ``HFLM`` (:class:`UnlearnkitLM`): the same weights, tokenizer
and device, with one change — every encoded string starts with the start token (BOS), as unlearnkit
trains raw text (:func:`unlearnkit.data.prompts.encode_text`). ``simple_evaluate`` seeds the global
RNGs; the caller's random, numpy and torch RNG states are restored afterwards.

:func:`native_mc_accuracy` is the same score computed by unlearnkit's own teacher-forced pass (the
summed log-probability of each choice's continuation, argmax): fast enough for probes during training,
and a cross-check of the lm-eval path (tests assert they agree).
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from unlearnkit.data.hazards import mc_text
from unlearnkit.data.prompts import Encoded, start_ids
from unlearnkit.errors import UnlearnkitError

LETTERS = ("A", "B", "C", "D")
TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
  cache_dir: {cache}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""


def write_task(directory: Path, name: str, records: list[dict]) -> Path:
    """``<name>.jsonl`` and ``<name>.yaml`` in ``directory``: a local lm-eval task over ``records``."""
    data = directory / f"{name}.jsonl"
    data.write_text("".join(json.dumps({k: r[k] for k in ("question", "choices", "answer")}) + "\n" for r in records),
                    encoding="utf-8")
    (directory / f"{name}.yaml").write_text(TASK_YAML.format(name=name, data=json.dumps(str(data)),
                                                             cache=json.dumps(str(directory / "hf-cache"))),
                                            encoding="utf-8")
    return data


def _wrapper_class():
    from lm_eval.models.huggingface import HFLM

    class UnlearnkitLM(HFLM):
        """lm-eval's HFLM around an in-memory model; strings start with the start token, as unlearnkit trains."""

        def tok_encode(self, string: str, add_special_tokens: bool | None = None, left_truncate_len: int | None = None,
                       **kwargs) -> list[int]:
            ids = start_ids(self.tokenizer) + self.tokenizer(string, add_special_tokens=False)["input_ids"]
            return ids[-left_truncate_len:] if left_truncate_len else ids

    return UnlearnkitLM


def lm_eval_samples(model, tokenizer, sets: dict[str, list[dict]], batch_size: int = 32) -> dict[str, list[dict]]:
    """lm-eval's logged samples (doc order) of each named four-choice set: ``acc`` and, per choice, the
    (log-likelihood, is-greedy) pair it scored."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:  # pragma: no cover - a declared dependency
        raise UnlearnkitError("WMDP accuracy is scored with lm-evaluation-harness: pip install lm_eval") from None
    _quiet()
    py, np_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    was_training = model.training
    try:
        with tempfile.TemporaryDirectory(prefix="unlearnkit-lmeval-") as tmp:
            for name, records in sets.items():
                write_task(Path(tmp), name, records)
            lm = _wrapper_class()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
                                  device=str(next(model.parameters()).device))
            out = lm_eval.simple_evaluate(model=lm, tasks=list(sets), num_fewshot=0, bootstrap_iters=0,
                                          log_samples=True, task_manager=TaskManager(include_path=tmp,
                                                                                     include_defaults=False))
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
        model.train(was_training)
    result = {}
    for name, records in sets.items():
        samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
        if len(samples) != len(records):
            raise UnlearnkitError(f"lm-eval scored {len(samples)} of the {len(records)} questions of {name}")
        result[name] = samples
    return result


def lm_eval_accuracy(model, tokenizer, sets: dict[str, list[dict]], batch_size: int = 32) -> dict[str, list[float]]:
    """Per-question accuracy (1.0 / 0.0, in record order) of each named four-choice set, scored by lm-eval."""
    return {k: [float(s["acc"]) for s in v] for k, v in lm_eval_samples(model, tokenizer, sets, batch_size).items()}


def _quiet() -> None:
    import logging

    for name in ("lm-eval", "lm_eval"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


@torch.no_grad()
def native_mc_logliks(model, tokenizer, records: list[dict], batch_size: int = 32) -> np.ndarray:
    """(questions, 4) summed log-probabilities of the continuations " A" … " D" after each rendered question,
    encoded as lm-eval encodes a pair (the whole text, split at the context's length)."""
    from unlearnkit.engine.passes import encoded_pass

    items = []
    for r in records:
        ctx = start_ids(tokenizer) + tokenizer(mc_text(r, with_answer=False), add_special_tokens=False)["input_ids"]
        for letter in LETTERS:
            whole = start_ids(tokenizer) + tokenizer(mc_text(r, with_answer=False) + " " + letter,
                                                     add_special_tokens=False)["input_ids"]
            items.append(Encoded(ctx, whole[len(ctx):]))
    st = encoded_pass(model, tokenizer, items, batch_size)
    return np.add.reduceat(st.logprob, st.offsets[:-1]).reshape(len(records), 4)


def native_mc_accuracy(model, tokenizer, records: list[dict], batch_size: int = 32) -> list[float]:
    """lm-eval's ``acc`` by unlearnkit's own pass: the argmax of :func:`native_mc_logliks` is the right choice."""
    sums = native_mc_logliks(model, tokenizer, records, batch_size)
    return [float(int(np.argmax(s)) == r["answer"]) for s, r in zip(sums, records)]
