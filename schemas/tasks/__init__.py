"""Task specs for the seven CASLIE tasks and the uniM3 input assembly."""

from schemas.tasks.catalog import ESCI_TO_LETTER, TASKS, get_task
from schemas.tasks.spec import LETTERS, TaskCode, TaskSpec, letter_options, ordinal, render

__all__ = [
    "ESCI_TO_LETTER",
    "LETTERS",
    "TASKS",
    "TaskCode",
    "TaskSpec",
    "get_task",
    "letter_options",
    "ordinal",
    "render",
]
