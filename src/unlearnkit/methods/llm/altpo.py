"""AltPO — alternate preference optimisation (Mekala et al., COLING 2025, "Alternate Preference
Optimization for Unlearning Factual Knowledge in Large Language Models", arXiv:2409.13474;
reference code github.com/molereddy/Alternate-Preference-Optimization, and OpenUnlearning's
community/methods/AltPO, which runs its DPO trainer on the alternates).

Negative feedback on the forget answer y together with in-domain positive feedback on plausible
*alternate* answers ã to the same question x. Forget term (minimised): DPO with chosen = ã and
rejected = y, averaged over the alternates A(x) of each forget item, then over the batch:

    mean_x mean_{ã∈A(x)} −(2/β)·log σ(β·[(log π_θ(ã|x) − log π_ref(ã|x)) − (log π_θ(y|x) − log π_ref(y|x))])

with sequence-summed answer log-probs and π_ref the frozen θ_o (the scale 2/β as in ``dpo``).
Default retain term: NLL on D_r with α = 1 (OpenUnlearning's DPO/GradDiff default and the
reference code's ``retain_wt: 1, retain_type: NLL``). Every step uses all |A(x)| alternates of
each forget item (1 + |A| sequences per item through θ and θ_o): one epoch covers every
(question, alternate) pair once, as the reference code's data set with |A| copies of each item.

**Alternates.** Either from the data — every forget record carries ``alternates`` (a list of
strings) or ``alternate`` (one string) — or generated once per forget item from θ_o before the
first step: N = ``n_alternates`` responses per question sampled at ``alternate_temperature``
(default 1.0, plain ancestral sampling as the reference code's generate.py, which draws 5 at
T = 1), batched, with their own RNG seeded by ``seed`` (the training RNG is untouched, so a
cached and a fresh run train identically). The prompt is the forget question itself, or
``alternate_prompt`` formatted with {question} and {answer} (the paper asks an instruction-tuned
θ_o to "write another version of the answer with alternate plausible facts"; the embedded
model is not instruction-tuned, so the default is the bare question). Generations are cached
under ``$UNLEARNKIT_HOME/cache/altpo/`` keyed by a content hash of θ_o's weights, the prompts and
the sampling settings, and verified on load: a second run does not regenerate. Alternates equal
to the true answer are kept (their pair has zero margin and no gradient); the step log reports
their share as ``alt_same``. Temperature scaling divides the logits of θ and θ_o; loss selection
picks the true-answer tokens summed (alternates are summed over all their tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.data.prompts import Encoded, collate, encode_pair, encode_prompt
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMObjective,
    LMParams,
    forget_token_logprobs,
    forward_logits,
    reference_token_logprobs,
    sequence_logprob,
    token_logprobs,
)
from unlearnkit.methods.llm.bs_s import bss_collate, bss_items

CACHE_VERSION = 1


def data_alternates(records: list[dict]) -> list[list[str]] | None:
    """Alternates given in the data (``alternates`` list or ``alternate`` string on every record), else None."""
    found = [r.get("alternates", r.get("alternate")) for r in records]
    if all(a is None for a in found):
        return None
    if any(a is None for a in found):
        raise UnlearnkitError("some forget records carry 'alternates' and some do not: give every forget record its "
                              "alternates, or none to have AltPO generate them from the original model")
    out = [[a] if isinstance(a, str) else list(a) for a in found]
    if any(not a or not all(isinstance(x, str) and x.strip() for x in a) for a in out):
        raise UnlearnkitError("every forget record's 'alternates' must be a non-empty list of non-empty strings")
    return out


def generation_prompts(tokenizer, records: list[dict], template: str | None) -> list[list[int]]:
    if template is None:
        return [encode_prompt(tokenizer, r["question"]) for r in records]
    try:
        return [encode_prompt(tokenizer, template.format(question=r["question"], answer=r["answer"])) for r in records]
    except (KeyError, IndexError, ValueError) as e:
        raise UnlearnkitError(f"alternate_prompt {template!r} is not a valid template ({type(e).__name__}: {e}): "
                              "use only the fields {question} and {answer}") from None


def sample_alternates(model, tokenizer, params, prompts: list[list[int]], max_new: int) -> list[list[list[int]]]:
    """N sampled answers per prompt from ``model``, with their own RNG seeded by ``params.seed``."""
    from unlearnkit.engine.generate import sample_ids

    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(params.seed)
        return sample_ids(model, tokenizer, prompts, params.n_alternates, max_new,
                          batch_size=max(1, params.alternate_batch_size // params.n_alternates),
                          temperature=params.alternate_temperature)


def valid_alternates(alts, n: int) -> bool:
    """A list of n non-empty lists of token-id lists (what :func:`sample_alternates` returns)."""
    return (isinstance(alts, list) and len(alts) == n
            and all(isinstance(per, list) and per and all(isinstance(a, list) and all(isinstance(t, int) for t in a)
                                                          for a in per) for per in alts))


def cached_alternates(model, tokenizer, params, prompts: list[list[int]], max_new: int) -> list[list[list[int]]]:
    """:func:`sample_alternates`, cached under ``$UNLEARNKIT_HOME/cache/altpo`` by content hash."""
    from unlearnkit.engine.cache import state_fingerprint
    from unlearnkit.io import atomic_write_json, content_hash, home, read_json

    key = content_hash([CACHE_VERSION, state_fingerprint(model), getattr(tokenizer, "name_or_path", ""), len(tokenizer),
                        prompts, params.n_alternates, params.alternate_temperature, max_new, params.seed], length=20)
    path = home() / "cache" / "altpo" / f"{key}.json"
    if path.is_file():
        try:
            saved = read_json(path)
        except ValueError:  # a damaged file: generate again
            saved = None
        if isinstance(saved, dict) and saved.get("key") == key and valid_alternates(saved.get("alternates"), len(prompts)):
            return saved["alternates"]
    alts = sample_alternates(model, tokenizer, params, prompts, max_new)
    atomic_write_json(path, {"key": key, "alternates": alts}, indent=None)
    return alts


def altpo_setup(model, tokenizer, params, state, forget_records) -> None:
    """Alternates per forget item, as answer token ids, into ``state`` (from the data or θ_o)."""
    given = data_alternates(forget_records)
    answers = [encode_pair(tokenizer, r["question"], r["answer"]).answer_ids for r in forget_records]
    if given is not None:  # answers encoded as answers to their own question (what a chat template needs)
        alts = [[encode_pair(tokenizer, r["question"], a).answer_ids for a in per]
                for r, per in zip(forget_records, given, strict=True)]
    else:
        prompts = generation_prompts(tokenizer, forget_records, params.alternate_prompt)
        max_new = params.alternate_max_new_tokens or max(len(a) for a in answers)
        alts = cached_alternates(model, tokenizer, params, prompts, max_new)
    state["altpo_prompts"] = [encode_prompt(tokenizer, r["question"]) for r in forget_records]
    state["altpo_alternates"] = alts
    state["altpo_pad_id"] = tokenizer.pad_token_id
    pairs = [(a, ans) for per, ans in zip(alts, answers, strict=True) for a in per]
    state["altpo_same"] = sum(a == ans for a, ans in pairs) / len(pairs)


def alternate_batch(state, index: torch.Tensor, device) -> tuple[dict, torch.Tensor]:
    """The (question, alternate) pairs of the items in ``index``, collated, and each row's item (0..B−1)."""
    items, owner = [], []
    for row, i in enumerate(index.tolist()):
        for alt in state["altpo_alternates"][i]:
            items.append(Encoded(state["altpo_prompts"][i], alt))
            owner.append(row)
    batch = {k: v.to(device) for k, v in collate(items, state["altpo_pad_id"]).items()}
    return batch, torch.tensor(owner, device=device)


def altpo_loss(chosen: torch.Tensor, ref_chosen: torch.Tensor, rejected: torch.Tensor, ref_rejected: torch.Tensor,
               owner: torch.Tensor, beta: float) -> torch.Tensor:
    """mean_b mean_{k: owner_k = b} −(2/β)·log σ(β·((chosen_k − ref_chosen_k) − (rejected_b − ref_rejected_b))).

    chosen, ref_chosen: (K,) alternates; rejected, ref_rejected: (B,) true answers; owner: (K,) item of each."""
    margin = (chosen - ref_chosen) - (rejected - ref_rejected)[owner]
    per_pair = -(2.0 / beta) * F.logsigmoid(beta * margin)
    b = rejected.shape[0]
    count = torch.zeros(b, device=per_pair.device, dtype=per_pair.dtype).index_add_(0, owner, torch.ones_like(per_pair))
    per_item = torch.zeros(b, device=per_pair.device, dtype=per_pair.dtype).index_add_(0, owner, per_pair)
    return (per_item / count.clamp_min(1.0)).mean()


def altpo_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    T = inp.params.temperature
    lp_y, mask_y = forget_token_logprobs(inp)  # the true (rejected) answers
    ref_lp_y, _ = reference_token_logprobs(inp.reference, inp.batch, T)
    alt, owner = alternate_batch(inp.state, inp.batch["index"], inp.batch["input_ids"].device)
    lp_a, mask_a = token_logprobs(forward_logits(inp.model, alt), alt["labels"], T)
    ref_lp_a, _ = reference_token_logprobs(inp.reference, alt, T)
    rejected, ref_rejected = sequence_logprob(lp_y, mask_y), sequence_logprob(ref_lp_y, mask_y)
    chosen, ref_chosen = sequence_logprob(lp_a, mask_a), sequence_logprob(ref_lp_a, mask_a)
    loss = altpo_loss(chosen, ref_chosen, rejected, ref_rejected, owner, inp.params.beta)
    return loss, {"chosen_log_ratio": float((chosen - ref_chosen).mean().detach()),
                  "rejected_log_ratio": float((rejected - ref_rejected).mean().detach()),
                  "alt_same": float(inp.state.get("altpo_same", 0.0))}


class AltPOParams(LMParams):
    beta: float = Field(0.1, gt=0, description="β: inverse temperature of the preference loss (OpenUnlearning's DPO "
                                               "default; the AltPO search space is 0.05, 0.1, 0.5)")
    n_alternates: int = Field(5, ge=1, description="N: alternates sampled per forget question (5 in the paper)")
    alternate_temperature: float = Field(1.0, gt=0, description="sampling temperature of the alternates (1.0 in the "
                                                                "paper)")
    alternate_max_new_tokens: int | None = Field(None, ge=1, description="length cap of an alternate; None = the "
                                                                         "longest forget answer")
    alternate_prompt: str | None = Field(None, description="template with {question} and {answer} to prompt θ_o "
                                                           "for alternates; None = the forget question itself")
    alternate_batch_size: int = Field(64, ge=1, description="sequences per generation batch")


register(MethodSpec(
    name="altpo", domain="llm", params=AltPOParams,
    summary="alternate preference optimisation: DPO with θ_o's alternate answers chosen, the forget answer rejected",
    fn=LMObjective(forget=altpo_forget, default_retain="nll", needs_reference=True, forget_data=bss_items,
                   forget_collate=bss_collate, setup=altpo_setup),
    paper="Mekala et al. 2025 (COLING), Alternate Preference Optimization for Unlearning Factual Knowledge in LLMs "
          "(arXiv:2409.13474)",
    needs=("reference", "sampling (or alternates in the data)"),
))
