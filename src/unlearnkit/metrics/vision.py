"""Image-classifier unlearning metrics (docs/vision.md, "Metrics"): UA, RA, TA, MIA-efficacy, Gap.

Pure functions over per-sample predictions and confidences (numpy arrays or tensors); no
model and no data loader inside. All values are percentages in [0, 100].

Where they are evaluated (done by the caller, :func:`unlearnkit.engine.vision.scenario_metrics`):

- **UA** = accuracy on the target concept's training data D_t, in the model's label space.
  In all matched and model mismatch D_t = D_f, so this is UA as "accuracy on D_f"; in target
  and data mismatch it includes the false-retaining data D_fr the unlearner never saw, which
  is exactly what the seed's table measures (its FT rows reach UA ≈ 50 in target mismatch
  because D_fr is still recognised). UA on D_f alone and on D_fr alone are reported beside it.
- **RA** = accuracy on D_r; **TA** = accuracy on test images outside the target concept.
- **MIA** (MIA-efficacy, Jia et al. 2023): an RBF SVC (C = 3, gamma = "auto") on one feature,
  the softmax probability of the true label; fitted with members = a sample of D_r and
  non-members = test images outside the target, equal sizes; MIA = 100 × the fraction of the
  evaluated set (D_t) predicted non-member. Higher = more forgotten.
- **Gap** = mean over {UA, RA, TA, MIA} of |metric(θ_u) − metric(θ_r)| (lower is better).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from unlearnkit.errors import UnlearnkitError

GAP_KEYS = ("UA", "RA", "TA", "MIA")


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def accuracy(preds, labels) -> float:
    """100 × mean(preds == labels). Empty input → NaN (there is nothing to be accurate on)."""
    p, y = _np(preds).reshape(-1), _np(labels).reshape(-1)
    if p.shape != y.shape:
        raise UnlearnkitError(f"accuracy: {p.shape[0]} predictions for {y.shape[0]} labels")
    if p.size == 0:
        return float("nan")
    return float(100.0 * np.mean(p == y))


def true_label_confidence(probs, labels) -> np.ndarray:
    """Softmax probability of the true label per sample: ``probs (N, C)``, ``labels (N,)`` → ``(N,)``."""
    pr, y = _np(probs), _np(labels).astype(np.int64)
    if pr.ndim != 2 or pr.shape[0] != y.shape[0]:
        raise UnlearnkitError(f"true_label_confidence: probs {pr.shape} do not match labels {y.shape}")
    return pr[np.arange(len(y)), y]


def mia_efficacy(member_conf, nonmember_conf, eval_conf, *, C: float = 3.0, gamma: str | float = "auto",
                 kernel: str = "rbf") -> float:
    """MIA-efficacy (%): fraction of ``eval_conf`` that an SVC, trained to tell members from
    non-members by their true-label confidence, predicts to be a non-member.

    ``member_conf`` and ``nonmember_conf`` must have the same length (the caller samples them
    to equal sizes). Members are class 1, non-members class 0.
    """
    return mia_efficacies(member_conf, nonmember_conf, {"x": eval_conf}, C=C, gamma=gamma, kernel=kernel)["x"]


def mia_efficacies(member_conf, nonmember_conf, eval_sets: Mapping[str, object], *, C: float = 3.0,
                   gamma: str | float = "auto", kernel: str = "rbf") -> dict[str, float]:
    """:func:`mia_efficacy` for several evaluated sets with one fitted SVC. Empty set → NaN."""
    from sklearn.svm import SVC

    m, n = (_np(x).astype(np.float64).reshape(-1) for x in (member_conf, nonmember_conf))
    if m.size == 0 or n.size == 0:
        raise UnlearnkitError("mia_efficacy needs members and non-members (one of the two sets is empty)")
    if m.size != n.size:
        raise UnlearnkitError(f"mia_efficacy: members ({m.size}) and non-members ({n.size}) must be equal in size")
    X = np.concatenate([m, n])[:, None]
    y = np.concatenate([np.ones(m.size), np.zeros(n.size)])
    clf = SVC(C=C, gamma=gamma, kernel=kernel)
    clf.fit(X, y)
    out = {}
    for name, conf in eval_sets.items():
        e = _np(conf).astype(np.float64).reshape(-1)
        out[name] = float(100.0 * np.mean(clf.predict(e[:, None]) == 0)) if e.size else float("nan")
    return out


def gap(metrics: Mapping[str, float], reference: Mapping[str, float], keys=GAP_KEYS) -> float:
    """Mean absolute difference to the reference over ``keys`` (UA, RA, TA, MIA)."""
    missing = [k for k in keys if k not in metrics or k not in reference]
    if missing:
        raise UnlearnkitError(f"gap: metric(s) {', '.join(missing)} missing from the model or the reference")
    return float(np.mean([abs(float(metrics[k]) - float(reference[k])) for k in keys]))


def balanced_sample(n_members: int, n_nonmembers: int, rng: np.random.Generator,
                    max_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions for equal-size member / non-member samples: ``n = min(n_members, n_nonmembers, max_size)``."""
    n = min(n_members, n_nonmembers, max_size or n_members)
    return (np.sort(rng.choice(n_members, size=n, replace=False)),
            np.sort(rng.choice(n_nonmembers, size=n, replace=False)))


def precision_recall(identified, truth) -> tuple[float, float]:
    """Set precision and recall (%) of ``identified`` against ``truth``; empty sets score 100 by convention
    (identifying nothing when there is nothing to identify is perfect)."""
    i, t = set(identified), set(truth)
    tp = len(i & t)
    precision = 100.0 * tp / len(i) if i else (100.0 if not t else 0.0)
    recall = 100.0 * tp / len(t) if t else 100.0
    return precision, recall
