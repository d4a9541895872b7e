"""Build the embedded benchmark's models: tokenizer → base → original θ_o → reference θ_r.

- **tokenizer**: byte-level BPE trained on the benchmark's text;
- **base**: a tiny Llama trained from scratch on the utility facts (``real_authors`` and
  ``world_facts``), standing for a pretrained model's general knowledge;
- **original θ_o**: base fine-tuned on ``full``;
- **reference θ_r**: base fine-tuned on ``retainXX`` with the same recipe, one per forget split.

With ``replay_utility`` (default on) the fine-tuning stage also replays the utility facts, as a
pretrained model would keep its general knowledge through a short fine-tune; θ_o and θ_r use
the same recipe, so the comparison stays fair.

Every artefact is cached under ``$UNLEARNKIT_HOME/models/<kind>-<hash>``, where the hash covers
everything that determines it (data config, model config, recipe, seed and the parent's hash):
a second build reuses it. Directories appear atomically, so a killed build leaves no half model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from unlearnkit import __version__
from unlearnkit.config import BuildConfig, TrainRecipe
from unlearnkit.data import fictitious
from unlearnkit.data.prompts import prompt_format, resolve_prompt, set_prompt_format
from unlearnkit.data.tofu import RETAIN_OF, QASource
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.data import encode_records, make_loader, sft_loss
from unlearnkit.engine.generate import generate_answers
from unlearnkit.engine.train import train_loop
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import (
    atomic_dir,
    atomic_write_json,
    content_hash,
    discard,
    file_hash,
    home,
    lock_path,
    locked,
    read_json,
    read_json_or_none,
)
from unlearnkit.models.lm import (
    build_tiny_llama,
    load_model,
    load_tokenizer,
    model_files,
    model_fingerprint,
    model_id,
    resolve_source,
    save_model,
)
from unlearnkit.models.tokenizer import train_tokenizer

META = "unlearnkit.json"
UTILITY_SPLITS = ("real_authors", "world_facts")


@dataclass
class ModelSet:
    """Where the built benchmark lives."""

    data_dir: Path
    tokenizer: Path
    base: Path
    original: Path
    references: dict[str, Path] = field(default_factory=dict)  # forget split → θ_r

    def reference_for(self, forget: str) -> Path:
        return self.references[forget]

    def meta(self, path: Path) -> dict:
        return read_json(path / META)


def _cached(kind: str, key: dict, make: Callable[[Path], dict], force: bool, say: Callable[[str], None]) -> Path:
    """``home()/models/<kind>-<hash of key>``: reused when its files still match the digest recorded when it
    was built (else reported, discarded and rebuilt); built atomically under a lock otherwise."""
    final = home() / "models" / f"{kind}-{content_hash(key)}"
    with locked(lock_path("models", final.name)):
        meta = read_json_or_none(final / META)
        if meta and not force:
            if meta.get("digest") in (None, model_fingerprint(final)):
                say(f"{kind:<22} cached   {final}")
                return final
            discard(final, "cached model", "its files do not match the digest recorded when it was built (damaged "
                    "or altered)")
        if dist.world_size() > 1:
            raise UnlearnkitError(f"the {kind} model is not built yet and a job of {dist.world_size()} processes does not "
                                  "build models: build them once in one process (`unlearnkit models build`, same build "
                                  "settings), then launch")
        t0 = time.perf_counter()
        with atomic_dir(final) as tmp:
            info = make(tmp)
            info.update({"kind": kind, "key": key, "unlearnkit_version": __version__,
                         "build_seconds": round(time.perf_counter() - t0, 2), "digest": file_hash(model_files(tmp))})
            atomic_write_json(tmp / META, info)
        say(f"{kind:<22} built    {final}  ({time.perf_counter() - t0:.1f}s)")
        return final


def exact_match_rate(model, tokenizer, records: list[dict], max_new_tokens: int = 64) -> float:
    """Fraction of records whose greedy answer equals the ground-truth answer exactly."""
    answers = generate_answers(model, tokenizer, [r["question"] for r in records], max_new_tokens)
    return sum(a == r["answer"].strip() for a, r in zip(answers, records)) / len(records)


def _sft(model, tokenizer, records: list[dict], recipe: TrainRecipe, desc: str):
    loader = make_loader(encode_records(tokenizer, records), recipe.batch_size, tokenizer.pad_token_id,
                         shuffle=True, seed=recipe.seed)
    torch.manual_seed(recipe.seed)
    return train_loop(model, loader, sft_loss, lr=recipe.lr, epochs=recipe.epochs, grad_accum=recipe.grad_accum,
                      weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio,
                      max_grad_norm=recipe.max_grad_norm, schedule=recipe.schedule, desc=desc, precision=recipe.precision)


def _log_summary(log) -> dict:
    return {"steps": len(log.steps), "final_loss": log.steps[-1]["loss"] if log.steps else None,
            "train_seconds": round(log.wall_time, 2)}


def build_models(cfg: BuildConfig | None = None, force: bool = False,
                 say: Callable[[str], None] = lambda s: None) -> ModelSet:
    """Build (or reuse) the data, tokenizer, base, original and reference models."""
    cfg = cfg or BuildConfig()
    data_dir = fictitious.build(cfg.data, force=force)
    say(f"{'data':<22} ready    {data_dir}")
    src = QASource(data_dir)
    utility = [r for s in UTILITY_SPLITS for r in src.split(s)]
    start = _pretrained_start(cfg, say) if cfg.pretrained else _tiny_start(cfg, src, force, say)

    def make_base(d: Path) -> dict:
        model = start.new_model()
        log = _sft(model, start.tokenizer, utility, cfg.base, "base")
        save_model(model, start.tokenizer, d)
        return {"role": "base", "trained_on": list(UTILITY_SPLITS), "train": _log_summary(log),
                "report": {"utility_exact_match": exact_match_rate(model, start.tokenizer, utility)}}

    base_dir = _cached("base", start.base_key, make_base, force, say)
    tune = _Finetune(cfg, src, utility, base_dir, start, force, say)
    original = tune("full", "original", {"full": "full", **{f: f for f in cfg.forget_splits}})
    refs = {f: tune(RETAIN_OF[f], "reference", {RETAIN_OF[f]: RETAIN_OF[f], f: f}) for f in cfg.forget_splits}
    return ModelSet(data_dir=data_dir, tokenizer=start.tokenizer_dir, base=base_dir, original=original, references=refs)


@dataclass
class _Start:
    """Where the base stage starts: the tokenizer and a fresh (tiny) or pretrained model."""

    tokenizer_dir: Path
    tokenizer: object
    base_key: dict
    new_model: Callable[[], torch.nn.Module]


def _tiny_start(cfg: BuildConfig, src: QASource, force: bool, say) -> _Start:
    """A byte-level BPE tokenizer trained on the benchmark's text and a randomly initialised tiny Llama."""
    tok_key = {"data": fictitious.data_hash(cfg.data), "vocab_size": cfg.model.vocab_size}

    def make_tok(d: Path) -> dict:
        texts = ["Question: Answer:"]
        for split in ("full", "holdout10", "real_authors_perturbed", "world_facts_perturbed"):
            for r in src.split(split):
                texts += [r["question"], r["answer"], r.get("paraphrased_question", ""),
                          r.get("paraphrased_answer", ""), *r.get("perturbed_answer", [])]
        texts += src.refusals
        train_tokenizer(texts, cfg.model.vocab_size).save_pretrained(d)
        return {"role": "tokenizer"}

    tok_dir = _cached("tokenizer", tok_key, make_tok, force, say)
    tokenizer = load_tokenizer(tok_dir)
    fmt = resolve_prompt(cfg.prompt)
    set_prompt_format(tokenizer, fmt)
    base_key = {"tokenizer": tok_key, "model": cfg.model.model_dump(), "recipe": cfg.base.model_dump(),
                **({"prompt": fmt.model_dump()} if fmt else {})}
    return _Start(tok_dir, tokenizer, base_key, lambda: build_tiny_llama(cfg.model, tokenizer, cfg.base.seed))


def _pretrained_start(cfg: BuildConfig, say) -> _Start:
    """The pretrained model (its own tokenizer and chat template) as the starting point of the base stage."""
    source = resolve_source(cfg.pretrained)
    _, tokenizer = load_model(source, prompt=cfg.prompt)
    say(f"{'pretrained':<22} ready    {source}")
    base_key = {"pretrained": model_id(source), "prompt": prompt_format(tokenizer).model_dump(),
                "recipe": cfg.base.model_dump(), "data": fictitious.data_hash(cfg.data)}

    def new_model() -> torch.nn.Module:
        torch.manual_seed(cfg.base.seed)
        return load_model(source, prompt=cfg.prompt)[0]

    return _Start(Path(source), tokenizer, base_key, new_model)


@dataclass
class _Finetune:
    """θ_o (on ``full``) or θ_r (on ``retainXX``) from the base, with the same recipe."""

    cfg: BuildConfig
    src: QASource
    utility: list[dict]
    base_dir: Path
    start: _Start
    force: bool
    say: Callable[[str], None]

    def __call__(self, split: str, role: str, report_splits: dict[str, str]) -> Path:
        cfg, tok = self.cfg, self.start.tokenizer
        key = {"base": self.start.base_key, "split": split, "recipe": cfg.finetune.model_dump(),
               "replay": cfg.replay_utility}

        def make(d: Path) -> dict:
            model, _ = load_model(self.base_dir)
            records = self.src.split(split) + (self.utility if cfg.replay_utility else [])
            log = _sft(model, tok, records, cfg.finetune, role)
            save_model(model, tok, d)
            report = {f"{name}_exact_match": exact_match_rate(model, tok, self.src.split(s))
                      for name, s in report_splits.items()}
            report["utility_exact_match"] = exact_match_rate(model, tok, self.utility)
            return {"role": role, "trained_on": split, "train": _log_summary(log), "report": report}

        kind = "original" if role == "original" else f"reference-{split}"
        return _cached(kind, key, make, self.force, self.say)
