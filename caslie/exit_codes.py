"""Exit codes of every ``caslie`` command."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    #: Input was invalid (``produce`` found bad lines, a file was missing).
    INVALID_INPUT = 1
    #: Wrong command-line usage (click's own code).
    USAGE = 2
    #: A stage stopped at its DLQ limit: the input is mostly garbage.
    DLQ_LIMIT = 3
    #: The broker could not be started or reached, a wait timed out, or a stage's model
    #: backend is missing (its package, GPU or model folder: the message says how to get it).
    UNAVAILABLE = 4
    #: Not every expected record arrived (demo, consume --max).
    INCOMPLETE = 5
    #: A stage failed (model engine died, delivery failed): let the supervisor restart it.
    STAGE_FAILED = 70
