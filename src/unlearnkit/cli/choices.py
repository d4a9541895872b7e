"""The choices, defaults and help texts of options that name registered things, drawn from where those are
defined — the task registry, the ``run vision`` config, the scenarios — so no list is written twice.

Reading them imports the registries (and torch with them): the parsers call these functions only when their
command is used (:mod:`unlearnkit.cli.parsers` fills a subcommand's options on first use).
"""

from __future__ import annotations

from typing import get_args


def default_task() -> str:
    """The task of ``eval`` without ``--task``: the one ``unlearnkit run`` evaluates by default."""
    from unlearnkit.recipes.lm import RunConfig

    return RunConfig.model_fields["task"].default


def tasks() -> list:
    """Every registered task, the default one first."""
    from unlearnkit.tasks import all_tasks

    first = default_task()
    return sorted(all_tasks(), key=lambda t: t.name != first)


def benchmarks() -> list[str]:
    """``--benchmark`` of ``eval``: the embedded twin, or a task's published data."""
    return ["embedded", *(t.published for t in tasks())]


def task_names() -> str:
    """``tofu, muse, wmdp``: the registered tasks, the default first."""
    return ", ".join(t.name for t in tasks())


def task_list() -> str:
    """``tofu (default) | muse | wmdp``: the values of ``task=`` in a run config."""
    names = [t.name for t in tasks()]
    return " | ".join([f"{names[0]} (default)", *names[1:]])


def forget_help() -> str:
    """The forget splits of every task, with its default."""
    return "; ".join(f"{t.name}: {' | '.join(t.forget_splits)}"
                     + (f", default {t.default_forget}" if len(t.forget_splits) > 1 else "") for t in tasks())


def tofu():
    """The task of the commands that take TOFU-format data only (``unlearn``, ``gradient``, ``squeeze``, ``layers``)."""
    from unlearnkit.tasks import get_task

    return get_task("tofu")


def tofu_splits() -> str:
    return " | ".join(tofu().forget_splits)


def _field(model, dotted: str):
    for name in dotted.split("."):
        field = model.model_fields[name]
        model = field.annotation
    return field


def vision_choices(dotted: str) -> list[str]:
    """The values a ``Literal`` field of the ``run vision`` config takes, e.g. ``data.dataset``, ``model.arch``,
    ``scenarios`` (a list of a ``Literal``)."""
    from unlearnkit.recipes.vision import VisionRunConfig

    kind = _field(VisionRunConfig, dotted).annotation
    while get_args(kind) and not isinstance(get_args(kind)[0], str):
        kind = get_args(kind)[0]
    return list(get_args(kind))


def vision_default(name: str) -> str:
    """A list default of the ``run vision`` config, comma-separated (``methods``, ``seeds``)."""
    from unlearnkit.recipes.vision import VisionRunConfig

    return ",".join(str(v) for v in _field(VisionRunConfig, name).default)
