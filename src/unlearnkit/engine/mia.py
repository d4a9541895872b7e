"""Membership inference on any task's eval sets: per-sample attack scores of a teacher-forced pass, their
AUCs (members vs non-members), and what needs the reference θ_r: PrivLeak and the Reference MIA
(docs/metrics.md)."""

from __future__ import annotations

from unlearnkit import metrics as M
from unlearnkit.engine.passes import TokenStats
from unlearnkit.engine.result import EvalResult
from unlearnkit.errors import UnlearnkitError

MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "gradnorm")  # "reference" needs θ_r: add_reference_mia


def mia_scores(st: TokenStats, texts: list[str], k: float, conv: M.Convention = M.Convention(),
               grad: list[float] | None = None) -> dict[str, list[float]]:
    """Per-sample MIA scores of the items of a pass (``texts``: the scored text of each, for ZLib)."""
    n = len(texts)
    out = {"mia_loss": [M.mia_loss_score(st.logprobs(i)) for i in range(n)],
           "mia_zlib": [M.mia_zlib_score(st.logprobs(i), texts[i]) for i in range(n)],
           "mia_min_k": [conv.min_k(st.logprobs(i), k) for i in range(n)],
           "mia_min_k_plus_plus": [conv.min_k_plus_plus(st.zs(i), k) for i in range(n)]}
    if grad is not None:
        out["mia_gradnorm"] = [M.mia_gradnorm_score(g) for g in grad]
    return out


def add_mia_aucs(res: EvalResult, members: str = "forget", nonmembers: str = "holdout") -> None:
    """``mia.auc_<attack>`` for every attack scored on both roles (members labelled 1)."""
    n_mia = len(res.per_sample[members]["mia_loss"]) + len(res.per_sample[nonmembers]["mia_loss"])
    for attack in MIA_ATTACKS:
        if f"mia_{attack}" in res.per_sample[members]:
            auc = M.mia_auc(res.per_sample[members][f"mia_{attack}"], res.per_sample[nonmembers][f"mia_{attack}"])
            res.add(f"mia.auc_{attack}", auc, n_mia, None)
    res.notes["mia"] = M.MIA_ORIENTATION


def add_privleak(res: EvalResult, ref: EvalResult, auc_key: str = "mia.auc_min_k", members: str = "forget",
                 nonmembers: str = "holdout") -> None:
    """PrivLeak (MUSE's convention) from the Min-K% AUC of ``res`` and of the reference θ_r."""
    n = len(res.per_sample[members]["mia_min_k"]) + len(res.per_sample[nonmembers]["mia_min_k"])
    res.add("privleak", M.privleak(res.value(auc_key), ref.value(auc_key)), n, None)
    res.notes["privleak"] = ("PrivLeak = (A'(model) − A'(reference)) / A'(reference) × 100 with A' = 1 − Min-K% AUC "
                             "(MUSE's convention); ≈0 ideal, < 0 under-unlearning, > 0 over-unlearning")


def add_reference_mia(res: EvalResult, ref: EvalResult, members: str = "forget", nonmembers: str = "holdout") -> None:
    """The Reference MIA: per sample, the model's LOSS score minus θ_r's (mean log-prob difference), and its AUC."""
    for role in (members, nonmembers):
        ps, rs = res.per_sample[role], ref.per_sample[role]
        if len(ps["mia_loss"]) != len(rs["mia_loss"]):
            raise UnlearnkitError(f"the reference was evaluated on {len(rs['mia_loss'])} {role} samples, the model on "
                                  f"{len(ps['mia_loss'])}: evaluate both on the same data")
        ps["mia_reference"] = [M.mia_reference_score(a, b) for a, b in zip(ps["mia_loss"], rs["mia_loss"])]
    n = len(res.per_sample[members]["mia_reference"]) + len(res.per_sample[nonmembers]["mia_reference"])
    res.add("mia.auc_reference", M.mia_auc(res.per_sample[members]["mia_reference"],
                                           res.per_sample[nonmembers]["mia_reference"]), n, None)
