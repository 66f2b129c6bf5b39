"""Tasks: one module per task (``ap.py`` ... ``ae.py``), the registry that lists them, and what
they share (spec, prompts, sample, resolving, answers, metrics). Read tasks through
:mod:`schemas.tasks.registry`."""

from schemas.tasks.registry import (
    CASLIE_TASKS,
    OPAL_TASKS,
    VITPRO_TASKS,
    all_tasks,
    get_task,
    is_task,
    register,
    task_codes,
    unregister,
)
from schemas.tasks.spec import LETTERS, Task, letter_options, ordinal, render

__all__ = [
    "CASLIE_TASKS",
    "LETTERS",
    "OPAL_TASKS",
    "VITPRO_TASKS",
    "Task",
    "all_tasks",
    "get_task",
    "is_task",
    "letter_options",
    "ordinal",
    "register",
    "render",
    "task_codes",
    "unregister",
]
