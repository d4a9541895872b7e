"""The four label-domain scenarios of docs/vision.md (seed: "Decoupling the Class Label and the
Target Concept in Machine Unlearning", Zhu et al., arXiv:2406.08288).

Three label domains: L_D (labels of the given forgetting data), L_M (labels the model
outputs), L_T (labels of the target concept). With a superclass ``S`` and forgotten fine
classes ``F ⊂ S`` (``c`` = the first of them):

| scenario          | model labels | D_f                     | target D_t            |
|-------------------|--------------|-------------------------|-----------------------|
| all_matched       | fine         | all data of c           | c                     |
| target_mismatch   | fine         | all data of F           | all of S              |
| model_mismatch    | superclass   | all data of c (label S) | only c                |
| data_mismatch     | superclass   | all data of F (label S) | all of S              |

Sets (indices into the training set D): D_f ⊆ D_t; D_un = D \\ D_f (what the unlearner gets);
D_fr = D_t \\ D_f (false retaining data: part of the target, not given); D_r = D \\ D_t (true
retaining data; the reference θ_r is trained on it from scratch). D_f, D_fr, D_r partition D.
Test subsets: ``test_target`` (test images of the target concept) and ``test_other`` (the
rest; TA and the MIA non-members come from it). The unlearner is handed D_f and D_un only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.data.images import ImageSet
from unlearnkit.errors import UnlearnkitError

SCENARIOS = ("all_matched", "target_mismatch", "model_mismatch", "data_mismatch")
TITLES = {
    "all_matched": "All matched (L_D = L_M = L_T)",
    "target_mismatch": "Target mismatch (L_D = L_M ≺ L_T)",
    "model_mismatch": "Model mismatch (L_D = L_T ≺ L_M)",
    "data_mismatch": "Data mismatch (L_D ≺ L_T = L_M)",
}
LABEL_LEVEL = {"all_matched": "fine", "target_mismatch": "fine", "model_mismatch": "coarse", "data_mismatch": "coarse"}


class ScenarioConfig(StrictModel):
    """Which concept to forget. Names or indices; defaults pick superclass 0."""

    superclass: str | int | None = Field(
        None, description="target superclass S (default: the superclass of forget_class, else 0)")
    forget_class: str | int | None = Field(
        None, description="the class c of all_matched / model_mismatch (default: the first forget_classes entry)")
    forget_classes: list[str | int] | None = Field(
        None, description="F ⊂ S given in target/data mismatch (default: the first half of S's classes)")


@dataclass
class Scenario:
    """One scenario's label space and index sets (indices into the data set's train/test)."""

    name: str
    label_level: str  # "fine" | "coarse"
    label_names: list[str]
    train_labels: torch.Tensor  # (N,) model-space labels of every training image
    test_labels: torch.Tensor  # (M,)
    forget: torch.Tensor  # D_f
    unlearn: torch.Tensor  # D_un = D \ D_f
    target: torch.Tensor  # D_t
    false_retain: torch.Tensor  # D_fr = D_t \ D_f
    retain: torch.Tensor  # D_r = D \ D_t
    test_target: torch.Tensor
    test_other: torch.Tensor
    forget_classes: list[int]  # fine class ids given as D_f
    target_classes: list[int]  # fine class ids of the target concept
    hidden_target_labels: list[int]  # model-space labels of D_fr (what TARF should identify)
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("forget", "unlearn", "target", "false_retain", "retain",
                                                   "test_target", "test_other")}


def resolve_choice(ds: ImageSet, cfg: ScenarioConfig) -> tuple[int, int, list[int]]:
    """(superclass S, class c, classes F) from the config, validated against the data set."""
    c = ds.class_id(cfg.forget_class) if cfg.forget_class is not None else None
    F = [ds.class_id(x) for x in cfg.forget_classes] if cfg.forget_classes is not None else None
    if cfg.superclass is not None:
        S = ds.superclass_id(cfg.superclass)
    elif c is not None:
        S = ds.fine_to_coarse[c]
    elif F:
        S = ds.fine_to_coarse[F[0]]
    else:
        S = 0
    members = ds.classes_of(S)
    sname = ds.superclass_names[S]
    if len(members) < 2:
        raise UnlearnkitError(f"superclass {sname!r} has {len(members)} class(es); mismatch scenarios need ≥ 2 "
                              "(pick another scenario.superclass)")
    if F is None:
        F = members[: max(1, len(members) // 2)]
    if not F:
        raise UnlearnkitError("scenario.forget_classes is empty: name at least one class of the superclass")
    if len(set(F)) != len(F):
        raise UnlearnkitError(f"scenario.forget_classes has duplicates: {cfg.forget_classes}")
    for f in F:
        if ds.fine_to_coarse[f] != S:
            raise UnlearnkitError(f"class {ds.class_names[f]!r} is not in superclass {sname!r} "
                                  f"(its classes: {', '.join(ds.class_names[m] for m in members)})")
    if len(F) == len(members):
        raise UnlearnkitError(f"scenario.forget_classes covers all of {sname!r}: target/data mismatch need part of "
                              "the superclass left unforgotten (forget fewer classes)")
    if c is None:
        c = F[0]
    if ds.fine_to_coarse[c] != S:
        raise UnlearnkitError(f"scenario.forget_class {ds.class_names[c]!r} is not in superclass {sname!r}")
    return S, c, F


def _isin(labels: torch.Tensor, values: list[int]) -> torch.Tensor:
    return torch.isin(labels, torch.as_tensor(values, dtype=labels.dtype))


def _idx(mask: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(mask, as_tuple=False).squeeze(1)


def build_scenario(ds: ImageSet, name: str, cfg: ScenarioConfig | None = None) -> Scenario:
    """Build scenario ``name`` (one of :data:`SCENARIOS`) on ``ds``."""
    if name not in SCENARIOS:
        import difflib

        close = difflib.get_close_matches(name, SCENARIOS, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise UnlearnkitError(f"unknown scenario {name!r}.{hint} Known: {', '.join(SCENARIOS)}")
    S, c, F = resolve_choice(ds, cfg or ScenarioConfig())
    members = ds.classes_of(S)
    coarse = LABEL_LEVEL[name] == "coarse"
    given = [c] if name in ("all_matched", "model_mismatch") else F
    target = members if name in ("target_mismatch", "data_mismatch") else [c]
    train_labels = ds.train_coarse if coarse else ds.train_fine
    test_labels = ds.test_coarse if coarse else ds.test_fine
    f_mask = _isin(ds.train_fine, given)
    t_mask = _isin(ds.train_fine, target)
    tt_mask = _isin(ds.test_fine, target)
    names = [ds.class_names[x] for x in given]
    if int(f_mask.sum()) == 0:
        raise UnlearnkitError(f"scenario {name}: D_f is empty (no training images of {', '.join(names)} in "
                              f"{ds.name}); choose classes that have training data")
    if int((~t_mask).sum()) == 0:
        raise UnlearnkitError(f"scenario {name}: D_r is empty (the target covers the whole training set)")
    if int((~tt_mask).sum()) == 0:
        raise UnlearnkitError(f"scenario {name}: no test images outside the target; TA and MIA need some")
    fr_mask = t_mask & ~f_mask
    hidden = sorted({int(v) for v in train_labels[fr_mask].tolist()})
    label_names = ds.superclass_names if coarse else ds.class_names
    sname = ds.superclass_names[S]
    desc = {
        "all_matched": f"forget class {names[0]!r} (fine labels); target = that class",
        "target_mismatch": f"forget {', '.join(map(repr, names))} (fine labels); target = all of superclass {sname!r}",
        "model_mismatch": f"forget class {names[0]!r} (model outputs superclasses); target = only that class",
        "data_mismatch": f"forget {', '.join(map(repr, names))} (model outputs superclasses); target = all of {sname!r}",
    }[name]
    return Scenario(
        name=name, label_level="coarse" if coarse else "fine", label_names=list(label_names),
        train_labels=train_labels, test_labels=test_labels,
        forget=_idx(f_mask), unlearn=_idx(~f_mask), target=_idx(t_mask), false_retain=_idx(fr_mask),
        retain=_idx(~t_mask), test_target=_idx(tt_mask), test_other=_idx(~tt_mask),
        forget_classes=list(given), target_classes=list(target), hidden_target_labels=hidden, description=desc,
    )
