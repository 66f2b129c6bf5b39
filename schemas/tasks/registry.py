"""The task registry: the one table of tasks that router, workers, training, evaluation, demo
and bench read.

The built-in tasks are CASLIE's seven (AP, CC, PRP, PSI, MPC, SA, SR), VIT-Pro's three claim
tasks (DD, PM, AE) and OPAL's listing generation (LG), each one module. A plug-in is a module
with a :class:`~schemas.tasks.spec.Task` subclass; :func:`register` adds it (``replace=True``
swaps a task for a reconfigured one) and :func:`unregister` takes it away again (tests).
"""

from __future__ import annotations

from schemas.tasks import ae, ap, cc, dd, lg, mpc, pm, prp, psi, sa, sr
from schemas.tasks.spec import Task

#: CASLIE's seven tasks, in the paper's order.
CASLIE_TASKS = ("AP", "CC", "PRP", "PSI", "MPC", "SA", "SR")
#: VIT-Pro's claim tasks.
VITPRO_TASKS = ("DD", "PM", "AE")
#: OPAL's listing task.
OPAL_TASKS = ("LG",)
BUILTIN: tuple[Task, ...] = tuple(m.TASK for m in (ap, cc, prp, psi, mpc, sa, sr, dd, pm, ae, lg))
_tasks: dict[str, Task] = {task.code: task for task in BUILTIN}


def get_task(code: str) -> Task:
    """Look a task up by its code (``"AP"`` ...); ``KeyError`` names the known codes."""
    try:
        return _tasks[code]
    except KeyError:
        raise KeyError(f"unknown task {code!r}; known: {', '.join(_tasks)}") from None


def task_codes() -> list[str]:
    """The registered task codes, built-in ones first."""
    return list(_tasks)


def all_tasks() -> list[Task]:
    return list(_tasks.values())


def is_task(code: object) -> bool:
    return isinstance(code, str) and code in _tasks


def register(task: Task, replace: bool = False) -> Task:
    """Add a task; a code already taken is an error unless ``replace``."""
    if task.code in _tasks and not replace:
        raise ValueError(f"task {task.code!r} is already registered")
    _tasks[task.code] = task
    return task


def unregister(code: str) -> None:
    """Remove a plug-in task (a built-in one is restored instead)."""
    builtin = {t.code: t for t in BUILTIN}
    if code in builtin:
        _tasks[code] = builtin[code]
    else:
        _tasks.pop(code, None)
