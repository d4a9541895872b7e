"""The task registry: benchmarks a run evaluates on (TOFU, MUSE, WMDP, …), one file each.

A task registers itself in its file with :func:`register`; :func:`load_all` imports every module
of this package, so ``unlearnkit ls tasks`` and the run always see every task.
"""

from __future__ import annotations

import importlib
import pkgutil

from unlearnkit.registry import Registry
from unlearnkit.tasks.base import NoOptions, Probe, Task, TaskData, TaskRequest

TASKS: Registry[Task] = Registry("task")
_NOT_TASKS = {"base", "lmeval", "training"}


def register(task: Task) -> Task:
    TASKS.add(task.name, task)
    return task


def load_all() -> None:
    for m in pkgutil.iter_modules(__path__):
        if m.name not in _NOT_TASKS:
            importlib.import_module(f"unlearnkit.tasks.{m.name}")


def get_task(name: str) -> Task:
    load_all()
    return TASKS.get(name)


def all_tasks() -> list[Task]:
    load_all()
    return [t for _, t in TASKS.items()]


__all__ = ["TASKS", "NoOptions", "Probe", "Task", "TaskData", "TaskRequest", "all_tasks", "get_task", "load_all",
           "register"]
