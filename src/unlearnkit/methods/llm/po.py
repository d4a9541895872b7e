"""PO (IDK) — preference optimisation towards a refusal (Maini et al., 2024, TOFU).

Forget term (minimised): the NLL of a refusal answer ("I don't know."-style, from the data
layer's refusal list) to each forget question, mean over the refusal's answer tokens. Default
retain term: NLL on D_r. Each time a forget question is drawn, its refusal is drawn afresh
(uniformly from the list, seeded by the run's seed), as TOFU's IDK data set does.

:func:`refusal_items` / :func:`refusal_collate` are the forget-data hooks shared with DPO: a
forget batch holds the true (question, answer) pairs under the usual keys and the same questions
paired with refusals under ``batch["refusal"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearnkit.data.prompts import Encoded, collate, encode_answer, encode_pair
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMObjective,
    LMParams,
    forward_logits,
    masked_mean,
    select_lowest_loss,
    token_logprobs,
)


@dataclass
class RefusalItem:
    """One forget question: its true answer and every refusal answer (token ids)."""

    pair: Encoded  # (question, true answer)
    refusals: list[list[int]]  # encoded refusal answers, EOS included


def refusal_items(records: list[dict], tokenizer, refusals: list[str], params) -> list[RefusalItem]:
    if not refusals:
        raise UnlearnkitError("this method needs refusal answers (\"I don't know\"-style), but the data source has "
                              "none: add an idontknow.jsonl (one refusal per line) next to the data")
    encoded = [encode_answer(tokenizer, r) for r in refusals]
    return [RefusalItem(encode_pair(tokenizer, r["question"], r["answer"]), encoded) for r in records]


def refusal_collate(items: list[RefusalItem], pad_id: int) -> dict:
    """True pairs under the usual keys; a refusal drawn per item (global torch RNG, seeded per run)."""
    picks = torch.randint(len(items[0].refusals), (len(items),)).tolist()
    chosen = [Encoded(it.pair.prompt_ids, it.refusals[k]) for it, k in zip(items, picks, strict=True)]
    return {**collate([it.pair for it in items], pad_id), "refusal": collate(chosen, pad_id)}


def po_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    """mean_i −log π(r_i | x, r_<i) over the refusal answer tokens (temperature/loss selection applied)."""
    batch = inp.batch["refusal"]
    lp, mask = token_logprobs(forward_logits(inp.model, batch), batch["labels"], inp.params.temperature)
    mask = select_lowest_loss(lp, mask, inp.params.loss_selection)
    loss = -masked_mean(lp, mask)
    return loss, {"refusal_nll": float(loss.detach())}


class POParams(LMParams):
    pass


register(MethodSpec(
    name="po", domain="llm", params=POParams,
    summary="IDK preference optimisation: NLL of a refusal answer to forget questions (+ NLL retain)",
    fn=LMObjective(forget=po_forget, default_retain="nll", forget_data=refusal_items, forget_collate=refusal_collate),
    paper="Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs (arXiv:2401.06121)",
    needs=("refusals",),
))
