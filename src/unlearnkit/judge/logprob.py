"""A local judge read from its token probabilities instead of its generated text.

For a single-criterion rubric (naturalness, similarity) the prompt is the rubric's
conversation in the chat template followed by the start of the answer ``{"score":``. One
forward pass over prompt + " " gives the probability of each integer k of the scale written
as `` k`` — as one token, π(" k"), and as a space token then a digit, π(" ")·π("k" | " ") —
renormalised over the scale: p(k). The score is the expected value
``Σ_k p(k) · (k − low) / (high − low)`` in [0, 1] (G-Eval's probability-weighted score).

Deterministic, one forward pass per item, never malformed — and without a reason, so it is a
:class:`~unlearnkit.judge.agreement.Scorer`, not a backend: its numbers do not go into
``JudgeResult`` rows. Small models that cannot keep to the JSON format (SmolLM2-135M) may still
rank responses this way; docs/results/judge-agreement.md has the measured agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearnkit.engine.generate import left_pad
from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge.base import JudgeItem
from unlearnkit.judge.local import render_conversation
from unlearnkit.judge.rubrics import Rubric, get_rubric

PREFILL = '{"score":'


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class LogprobScorer:
    """Expected rubric score from a causal LM's next-token probabilities (see the module doc)."""

    metrics = ("naturalness", "similarity")

    def __init__(self, model, tokenizer, model_id: str, batch_size: int = 8) -> None:
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        self.name = f"logprob:{model_id}"

    def _text(self, rubric: Rubric, item: JudgeItem) -> str:
        conv = rubric.messages(item.question, item.response, item.reference)
        return render_conversation(self.tokenizer, conv) + PREFILL

    def scale_tokens(self, rubric: Rubric, text: str) -> tuple[int, list[int | None], list[int | None]]:
        """(space token, merged " k" token or None per k, bare "k" token or None per k) after ``text``."""
        base, spaced = _ids(self.tokenizer, text), _ids(self.tokenizer, text + " ")
        if len(spaced) != len(base) + 1 or spaced[:-1] != base:
            raise UnlearnkitError(f"the tokenizer of {self.name} merges the space after {PREFILL!r}: "
                                  "use the generating judge (LocalBackend) for this model")
        c = rubric.criteria[0]
        merged: list[int | None] = []
        bare: list[int | None] = []
        for k in range(c.low, c.high + 1):
            m, d = _ids(self.tokenizer, f" {k}"), _ids(self.tokenizer, str(k))
            merged.append(m[0] if len(m) == 1 else None)
            bare.append(d[0] if len(d) == 1 and d[0] != merged[-1] else None)
            if merged[-1] is None and bare[-1] is None:
                raise UnlearnkitError(f"the tokenizer of {self.name} has no single token for the score {k}: "
                                      "use the generating judge (LocalBackend) for this model")
        return spaced[-1], merged, bare

    @torch.no_grad()
    def _probabilities(self, prompts: list[list[int]], space: int, merged, bare) -> torch.Tensor:
        """p(k) for each prompt  # (n, scale): π(" k") + π(" ")·π("k" | " "), renormalised over the scale."""
        device = next(self.model.parameters()).device
        rows = []
        for s in range(0, len(prompts), self.batch_size):
            ids, mask, _ = left_pad([p + [space] for p in prompts[s : s + self.batch_size]], self.tokenizer.pad_token_id)
            pos = (mask.cumsum(-1) - 1).clamp_min(0)  # positions count real tokens only (left padding)
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                position_ids=pos.to(device)).logits[:, -2:].double().cpu()  # (batch, 2, vocab)
            first, second = logits[:, 0].log_softmax(-1), logits[:, 1].log_softmax(-1)  # after PREFILL; after " "
            p = torch.zeros(len(ids), len(merged), dtype=torch.float64)
            for j, (m, b) in enumerate(zip(merged, bare)):
                if m is not None:
                    p[:, j] += first[:, m].exp()
                if b is not None:
                    p[:, j] += (first[:, space] + second[:, b]).exp()
            rows.append(p / p.sum(-1, keepdim=True))
        return torch.cat(rows)

    def score(self, metric: str, items: Sequence[JudgeItem]) -> list[float | None]:
        rubric = get_rubric(metric)
        if metric not in self.metrics or len(rubric.criteria) != 1:
            raise UnlearnkitError(f"{self.name} scores {', '.join(self.metrics)}, not {metric!r}")
        if not items:
            return []
        texts = [self._text(rubric, it) for it in items]
        space, merged, bare = self.scale_tokens(rubric, texts[0])
        p = self._probabilities([_ids(self.tokenizer, t) for t in texts], space, merged, bare)
        values = torch.linspace(0.0, 1.0, len(merged), dtype=torch.float64)
        return [float(x) for x in p @ values]
