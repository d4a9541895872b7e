"""BS-S — bootstrapping at the sequence level (Li et al., 2025, "LLM Unlearning with LLM Beliefs").

The model's own high-confidence generations to the forget prompts are where GA squeezes the
probability mass; BS-S unlearns them together with the targets:

    L_BSS = (1−λ_s)·L_BST(D_f) + λ_s·L_BST(D̂_f)

D̂_f holds N responses per forget prompt, sampled from the *current* model at temperature 1
(plain ancestral sampling, no top-k/top-p), regenerated every E epochs: before the first epoch
(from θ_o), then after epochs E, 2E, … (batched over prompts, N sequences per prompt). L_BST is
BS-T's forget term (soft target with the model's top-k token beliefs, weight λ). For each forget
batch of B prompts the sampled batch holds their B·N responses; each of the two L_BST terms is
its own token mean. A sampled response keeps its EOS when it produced one. Default retain: NLL
(as BS-T). Cost: 1 + N forward/backward passes per step plus the sampling every E epochs.
"""

from __future__ import annotations

import torch
from pydantic import Field, field_validator

from unlearnkit.data.prompts import Encoded, collate, encode_pair, encode_prompt
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, LMParams, masked_mean
from unlearnkit.methods.llm.bs_t import bst_loss


def bss_items(records: list[dict], tokenizer, refusals: list[str], params) -> list[tuple[int, Encoded]]:
    """(index of the forget prompt, its (question, answer) pair): the index finds its samples."""
    return [(i, encode_pair(tokenizer, r["question"], r["answer"])) for i, r in enumerate(records)]


def bss_collate(items: list[tuple[int, Encoded]], pad_id: int) -> dict:
    return {**collate([e for _, e in items], pad_id), "index": torch.tensor([i for i, _ in items])}


def regenerate(model, tokenizer, params, state) -> None:
    """Sample N responses per forget prompt from the current model into ``state["bss_samples"]``."""
    from unlearnkit.engine.generate import sample_ids

    state["bss_samples"] = sample_ids(model, tokenizer, state["bss_prompts"], params.n_samples,
                                      state["bss_max_new_tokens"], batch_size=params.sample_batch_size)
    state["bss_generations"] = state.get("bss_generations", 0) + 1


def bss_setup(model, tokenizer, params, state, forget_records) -> None:
    if params.n_samples < 1:  # validated by BSSParams too; kept for callers that bypass validation
        raise UnlearnkitError(f"BS-S needs n_samples ≥ 1 sampled responses per forget prompt (got {params.n_samples})")
    state["bss_prompts"] = [encode_prompt(tokenizer, r["question"]) for r in forget_records]
    longest = max(len(encode_pair(tokenizer, r["question"], r["answer"]).answer_ids) for r in forget_records)
    state["bss_max_new_tokens"] = params.sample_max_new_tokens or longest
    state["bss_pad_id"] = tokenizer.pad_token_id
    regenerate(model, tokenizer, params, state)


def bss_on_epoch_end(model, tokenizer, epoch, params, state, loader) -> None:
    done = epoch + 1
    if done % params.regenerate_every == 0 and done < params.epochs:
        regenerate(model, tokenizer, params, state)


def sampled_batch(state, index: torch.Tensor, device) -> dict:
    """The B·N (prompt, sampled response) pairs of the prompts in ``index``, collated."""
    items = [Encoded(state["bss_prompts"][i], resp) for i in index.tolist() for resp in state["bss_samples"][i]]
    return {k: v.to(device) for k, v in collate(items, state["bss_pad_id"]).items()}


def bss_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    p = inp.params
    target, lp, mask = bst_loss(inp.model, inp.batch, p)
    own, own_lp, own_mask = bst_loss(inp.model, sampled_batch(inp.state, inp.batch["index"], inp.batch["input_ids"].device), p)
    loss = (1.0 - p.lam_s) * target + p.lam_s * own
    return loss, {"forget_nll": float(-masked_mean(lp, mask).detach()),
                  "sampled_nll": float(-masked_mean(own_lp, own_mask).detach()),
                  "generations": float(inp.state.get("bss_generations", 0))}


class BSSParams(LMParams):
    lam: float = Field(0.2, ge=0, le=1, description="λ of L_BST: weight of the top-k token beliefs in the soft target")
    top_k: int = Field(20, ge=1, description="k of L_BST")
    lam_s: float = Field(0.5, ge=0, le=1, description="λ_s: weight of the model's own sampled responses")
    n_samples: int = Field(3, description="N ≥ 1: responses sampled per forget prompt")
    regenerate_every: int = Field(2, ge=1, description="E: resample the responses every E epochs")
    sample_max_new_tokens: int | None = Field(None, ge=1, description="length cap of a sampled response; "
                                                                      "None = the longest forget answer")
    sample_batch_size: int = Field(64, ge=1, description="prompts per sampling batch")

    @field_validator("n_samples")
    @classmethod
    def _at_least_one(cls, v: int) -> int:
        if v < 1:
            raise ValueError("BS-S needs at least one sampled response per forget prompt (n_samples ≥ 1)")
        return v


register(MethodSpec(
    name="bs-s", domain="llm", params=BSSParams,
    summary="bootstrapping (sequence): BS-T on the targets and on N responses sampled from the current model",
    fn=LMObjective(forget=bss_forget, default_retain="nll", forget_data=bss_items, forget_collate=bss_collate,
                   setup=bss_setup, on_epoch_end=bss_on_epoch_end),
    paper="Li et al. 2025, LLM Unlearning with LLM Beliefs (arXiv:2510.19422)",
    needs=("sampling",),
))
