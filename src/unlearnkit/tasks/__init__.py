"""The task registry: benchmarks a run evaluates on (TOFU, MUSE, WMDP, …), one file each.

A task registers itself in its file with :func:`register`; :func:`load_all` imports every module
of this package, so ``unlearnkit ls tasks`` and the run always see every task.
"""

from __future__ import annotations

from unlearnkit.registry import Registry, import_modules
from unlearnkit.tasks.base import CorpusTask, NoOptions, Probe, Task, TaskData, TaskRequest, TrainingData

TASKS: Registry[Task] = Registry("task")
_NOT_TASKS = ("base", "lmeval", "training", "tofu_eval", "tofu_metrics")


def register(task: Task) -> Task:
    TASKS.add(task.name, task)
    return task


def load_all() -> None:
    import_modules(__name__, skip=_NOT_TASKS)


def get_task(name: str) -> Task:
    load_all()
    return TASKS.get(name)


def all_tasks() -> list[Task]:
    load_all()
    return [t for _, t in TASKS.items()]


__all__ = ["TASKS", "CorpusTask", "NoOptions", "Probe", "Task", "TaskData", "TaskRequest", "TrainingData", "all_tasks",
           "get_task", "load_all", "register"]
