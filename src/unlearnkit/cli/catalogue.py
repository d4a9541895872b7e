"""``unlearnkit ls``: what the registries hold, as text — the methods of both domains with the retain terms
they combine with, the evaluation tasks and the attacks; ``run vision --list-methods``: the image-classifier methods."""

from __future__ import annotations

from collections.abc import Callable


def methods() -> str:
    from unlearnkit.methods import methods_for
    from unlearnkit.methods.llm.base import LMObjective
    from unlearnkit.results.tables import format_table

    lines = []
    for domain, title in (("llm", "language-model methods"), ("vision", "image-classifier methods")):
        lines += [f"{title}:", format_table(["name", "what it does", "needs"],
                                             [[s.name, s.summary, ", ".join(s.needs) or "-"]
                                              for s in methods_for(domain)]), ""]
    own = ", ".join(f"{s.name}+{k}" for s in methods_for("llm") if isinstance(s.fn, LMObjective)
                    for k in s.fn.extra_retain)
    lines.append("Language-model methods combine with a retain term by name: <method>+<none|nll|kl>, e.g. npo+kl"
                 + (f"; method-specific retain terms: {own}." if own else "."))
    return "\n".join(lines)


def tasks() -> str:
    from unlearnkit.results.tables import format_table
    from unlearnkit.tasks import all_tasks

    return "\n".join([
        "tasks (`unlearnkit run task=NAME`, `unlearnkit eval --task NAME`; docs/tasks.md):",
        format_table(["name", "what it evaluates", "forget splits", "published data"],
                     [[t.name, t.summary, ", ".join(t.forget_splits), f"benchmark={t.published} ({t.hub})"]
                      for t in all_tasks()])])


def attacks() -> str:
    from unlearnkit.attacks import attack_specs
    from unlearnkit.results.tables import format_table

    return "\n".join([
        "attacks (interventions that try to bring forgotten knowledge back; `unlearnkit reliability` "
        "interventions=[...]; docs/attacks.md):",
        format_table(["name", "kind", "what it does", "source"],
                     [[a.name, a.kind, a.summary, a.source] for a in attack_specs()])])


def vision_methods() -> str:
    from unlearnkit.methods import methods_for
    from unlearnkit.results.tables import format_table

    return format_table(["method", "summary", "paper"], [[s.name, s.summary, s.paper] for s in methods_for("vision")])


# What `unlearnkit ls WHAT` lists (the choices of WHAT).
LISTINGS: dict[str, Callable[[], str]] = {"methods": methods, "tasks": tasks, "attacks": attacks}
