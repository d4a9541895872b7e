"""One batched teacher-forced forward pass → every per-token statistic the metrics need.

For a prompt x and answer tokens y_1..y_n (the answer ends with EOS) the pass yields, per
answer token,

- ``logprob``  log π(y_i | x, y_<i),
- ``correct``  [argmax π(· | x, y_<i) = y_i],
- ``z``        the Min-K%++ score (log π(y_i) − μ_i) / σ_i with μ_i = E_{v~π}[log π(v)] and
  σ_i² = E_{v~π}[(log π(v))²] − μ_i² at that position.

Every metric of docs/metrics.md except ROUGE and judges is a function of these, so one pass per
(model, eval set, question/answer variant) feeds all of them. Only answer positions reach the
output head (hidden states are gathered first), so the (batch, seq, vocab) logits of a large
vocabulary are never materialised for prompt tokens; the answer positions reach the head in row chunks
(:data:`LOGITS_BUDGET`), so no (answer tokens, vocab) block is materialised either — at Llama-3's 128 k
vocabulary a pass holds at most 64 MiB of fp32 logits at a time, whatever the batch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from unlearnkit.data.prompts import IGNORE, Encoded, collate, encode_pair, fit_to_context
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.data import answer_rows
from unlearnkit.engine.precision import upcast


@dataclass
class TokenStats:
    """Ragged per-token statistics of n samples, stored flat with offsets."""

    offsets: np.ndarray  # (n + 1,) int64
    logprob: np.ndarray  # (N,) float64
    correct: np.ndarray  # (N,) bool
    z: np.ndarray  # (N,) float64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _slice(self, arr: np.ndarray, i: int) -> np.ndarray:
        return arr[self.offsets[i] : self.offsets[i + 1]]

    def logprobs(self, i: int) -> np.ndarray:
        return self._slice(self.logprob, i)

    def corrects(self, i: int) -> np.ndarray:
        return self._slice(self.correct, i)

    def zs(self, i: int) -> np.ndarray:
        return self._slice(self.z, i)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def mean_logprob(self) -> np.ndarray:
        """Per-sample mean token log-prob  # (n,)."""
        sums = np.add.reduceat(self.logprob, self.offsets[:-1]) if len(self.logprob) else np.zeros(len(self))
        return sums / self.lengths()

    def take(self, start: int, stop: int) -> TokenStats:
        """Samples start..stop−1 as their own TokenStats."""
        a, b = self.offsets[start], self.offsets[stop]
        return TokenStats(self.offsets[start : stop + 1] - a, self.logprob[a:b], self.correct[a:b], self.z[a:b])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, offsets=self.offsets, logprob=self.logprob, correct=self.correct, z=self.z)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenStats:
        """Parse and check the arrays (offsets from 0, increasing, ending at the token count)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            st = cls(f["offsets"], f["logprob"], f["correct"], f["z"])
        n = len(st.logprob)
        if (st.offsets[0] != 0 or st.offsets[-1] != n or np.any(np.diff(st.offsets) < 0)
                or len(st.correct) != n or len(st.z) != n):
            raise ValueError("inconsistent token statistics")
        return st


# A (rows, vocab) block of fp32 logits holds at most this many elements (64 MiB): answer positions go to the
# output head in row chunks of LOGITS_BUDGET // vocab, so no (batch, seq, vocab) — nor (answer tokens, vocab) —
# logits tensor of a large vocabulary is ever materialised. Each row's statistics depend on that row only, so
# chunking does not change them; a batch of the embedded benchmark fits one chunk (the arithmetic of the
# unchunked pass, bit for bit).
LOGITS_BUDGET = 1 << 24


def _row_stats(logits: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-prob of the target, argmax flag and Min-K%++ score per row of ``logits``  # (rows, vocab) → 3 × (rows,)."""
    logits = upcast(logits)
    logp = torch.log_softmax(logits, dim=-1)
    lp = logp.gather(1, tgt[:, None]).squeeze(1)
    correct = logits.argmax(-1) == tgt
    p = logp.exp()
    mu = (p * logp).sum(-1)
    var = (p * logp.square()).sum(-1) - mu.square()
    z = (lp - mu) / var.clamp_min(0).sqrt().clamp_min(1e-8)
    return lp, correct, z


def answer_stats(model, input_ids, attention_mask, select, tgt, budget: int = LOGITS_BUDGET):
    """Per answer token (the True entries of ``select``, targets ``tgt``): log-prob, argmax flag, Min-K%++ z,
    computed in row chunks of at most ``budget`` logits  # 3 × (N,)."""
    rows, to_logits, vocab = answer_rows(model, input_ids, attention_mask, select)  # (N, d) hidden, or (N, vocab)
    parts = chunked_rows(rows, to_logits, vocab, tgt, _row_stats, budget)
    if not parts:
        return tgt.float(), tgt == tgt, tgt.float()
    return tuple(torch.cat([p[k] for p in parts]) for k in range(3))


def chunked_rows(rows: torch.Tensor, to_logits, vocab: int, tgt: torch.Tensor, stats, budget: int = LOGITS_BUDGET):
    """``stats(logits, tgt)`` of each chunk of ``rows``, sent to the head ``to_logits`` at most ``budget`` logits
    (rows × vocab) at a time: one tuple of per-row tensors per chunk (none for no rows)."""
    step = max(1, budget // max(1, vocab))
    return [stats(to_logits(rows[s : s + step]), tgt[s : s + step]) for s in range(0, rows.shape[0], step)]


def model_context(model) -> int | None:
    """The model's context length in tokens (``max_position_embeddings``), if it declares one."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


@torch.no_grad()
def teacher_forced_pass(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 32,
                        truncate: bool = False) -> TokenStats:
    """Per-token log-probs, argmax flags and Min-K%++ scores for (question, answer) pairs.

    With several processes (:mod:`unlearnkit.engine.distributed`) the batches are shared out round
    robin and the per-sample values gathered back in dataset order: every process returns the full
    result, equal to one process's (each batch is the same batch, computed the same way).
    """
    encoded = fit_to_context([encode_pair(tokenizer, q, a) for q, a in pairs], model_context(model),
                             "(question, answer) pairs", truncate)
    return encoded_pass(model, tokenizer, encoded, batch_size)


@torch.no_grad()
def encoded_pass(model, tokenizer, encoded: Sequence[Encoded], batch_size: int = 32) -> TokenStats:
    """:func:`teacher_forced_pass` on already tokenised items (e.g. raw text: BOS as the prompt, the text as the
    answer, see :func:`unlearnkit.data.prompts.encode_text`)."""
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    per_sample: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    was_training = model.training
    model.eval()
    try:
        for idx in dist.shard(batches):
            per_sample.update(_pass_batch(model, [encoded[i] for i in idx], idx, tokenizer.pad_token_id, device))
    finally:
        model.train(was_training)
    if dist.world_size() > 1:
        per_sample = {i: v for part in dist.gather(per_sample) for i, v in part.items()}
    lengths = [len(per_sample[i][0]) for i in range(len(encoded))]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cat = lambda k, dt: np.concatenate([per_sample[i][k] for i in range(len(encoded))]).astype(dt) if encoded else np.zeros(0, dt)  # noqa: E731
    return TokenStats(offsets, cat(0, np.float64), cat(1, bool), cat(2, np.float64))


def _pass_batch(model, items: list, idx: list[int], pad_id: int, device) -> dict[int, tuple]:
    """One batch of the pass: sample index → (log-probs, argmax flags, z) of its answer tokens."""
    batch = collate(items, pad_id)
    ids = batch["input_ids"].to(device)
    mask = batch["attention_mask"].to(device)
    targets = batch["labels"][:, 1:].to(device)  # token t+1 is predicted at position t
    select = torch.zeros_like(ids, dtype=torch.bool)
    select[:, :-1] = targets != IGNORE  # (batch, seq)
    tgt = targets[targets != IGNORE]  # (N,)
    lp, correct, z = answer_stats(model, ids, mask, select, tgt)
    counts = (targets != IGNORE).sum(1).tolist()
    lp_np, c_np, z_np = (t.double().cpu().numpy() if t.dtype != torch.bool else t.cpu().numpy() for t in (lp, correct, z))
    out, start = {}, 0
    for row, i in enumerate(idx):
        n = counts[row]
        out[i] = (lp_np[start : start + n], c_np[start : start + n], z_np[start : start + n])
        start += n
    return out
