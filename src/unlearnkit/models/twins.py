"""Models of an embedded twin (MUSE, WMDP), built like the TOFU benchmark's (:mod:`unlearnkit.models.build`):
tokenizer → base → original θ_o → reference θ_r, each cached under ``$UNLEARNKIT_HOME/models`` by a hash
of everything that determines it.

A twin says what each stage trains on (:class:`TwinPlan`): records are (question, answer) pairs in the
model's prompt format or raw text (``{"text": …}``, trained on every token: the corpora). The base
learns the twin's background (general knowledge, the text style, the QA format); θ_o is the base
fine-tuned on everything of the benchmark, θ_r the base fine-tuned on everything but the forget data,
with the same recipe. ``replay`` records (the base's own data) join both fine-tunings, as TOFU's
``replay_utility`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from unlearnkit.config import BuildConfig
from unlearnkit.data.prompts import resolve_prompt, set_prompt_format
from unlearnkit.models.build import _cached, _log_summary, _pretrained_start, _sft, _Start
from unlearnkit.models.lm import build_tiny_llama, load_model, load_tokenizer, save_model
from unlearnkit.models.tokenizer import train_tokenizer


@dataclass
class TwinPlan:
    """What each stage of a twin trains on."""

    kind: str  # cache prefix, e.g. "muse" (models/muse-original-<hash>)
    data_key: dict  # determines every record below (the generator config and version)
    texts: list[str]  # what the tokenizer is trained on
    base: list[dict]  # the base model's training records
    original: list[dict]  # θ_o's fine-tuning records (the whole benchmark)
    references: dict[str, list[dict]]  # name → θ_r's fine-tuning records (the benchmark minus a forget set)
    replay: list[dict] = field(default_factory=list)  # joins every fine-tuning
    context: int = 128  # max_position_embeddings of the tiny model


@dataclass
class TwinModels:
    tokenizer: Path
    base: Path
    original: Path
    references: dict[str, Path]


def _tiny_twin_start(cfg: BuildConfig, plan: TwinPlan, force: bool, say) -> _Start:
    model_cfg = cfg.model.model_copy(update={"max_position_embeddings": max(cfg.model.max_position_embeddings,
                                                                             plan.context)})
    tok_key = {"twin": plan.kind, "data": plan.data_key, "vocab_size": model_cfg.vocab_size}

    def make_tok(d: Path) -> dict:
        train_tokenizer(["Question: Answer:", *plan.texts], model_cfg.vocab_size).save_pretrained(d)
        return {"role": "tokenizer"}

    tok_dir = _cached(f"{plan.kind}-tokenizer", tok_key, make_tok, force, say)
    tokenizer = load_tokenizer(tok_dir)
    fmt = resolve_prompt(cfg.prompt)
    set_prompt_format(tokenizer, fmt)
    base_key = {"tokenizer": tok_key, "model": model_cfg.model_dump(), "recipe": cfg.base.model_dump(),
                **({"prompt": fmt.model_dump()} if fmt else {})}
    return _Start(tok_dir, tokenizer, base_key, lambda: build_tiny_llama(model_cfg, tokenizer, cfg.base.seed))


def build_twin(cfg: BuildConfig, plan: TwinPlan, force: bool = False,
               say: Callable[[str], None] = lambda s: None) -> TwinModels:
    """Build (or reuse) the twin's tokenizer, base, θ_o and every θ_r of ``plan``."""
    if cfg.pretrained:
        start = _pretrained_start(cfg, say)
        start.base_key = {**start.base_key, "data": plan.data_key, "twin": plan.kind}
    else:
        start = _tiny_twin_start(cfg, plan, force, say)

    def make_base(d: Path) -> dict:
        model = start.new_model()
        log = _sft(model, start.tokenizer, plan.base, cfg.base, f"{plan.kind} base")
        save_model(model, start.tokenizer, d)
        return {"role": "base", "trained_on": "background", "train": _log_summary(log)}

    base = _cached(f"{plan.kind}-base", start.base_key, make_base, force, say)

    def tune(name: str, records: list[dict]) -> Path:
        key = {"base": start.base_key, "records": _records_key(records), "replay": _records_key(plan.replay),
               "recipe": cfg.finetune.model_dump()}

        def make(d: Path) -> dict:
            model, _ = load_model(base)
            log = _sft(model, start.tokenizer, records + plan.replay, cfg.finetune, f"{plan.kind} {name}")
            save_model(model, start.tokenizer, d)
            return {"role": name, "records": len(records), "train": _log_summary(log)}

        return _cached(f"{plan.kind}-{name}", key, make, force, say)

    original = tune("original", plan.original)
    refs = {n: tune(f"reference-{n}", recs) for n, recs in plan.references.items()}
    return TwinModels(start.tokenizer_dir, base, original, refs)


def _records_key(records: list[dict]) -> str:
    from unlearnkit.io import content_hash

    return content_hash(records, 16)
