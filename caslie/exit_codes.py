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
    #: ``retrain``: the gate kept the incumbent, the candidate was not better. The run did its
    #: job: a scheduler treats it as success (the CronJob maps it to 0).
    KEPT_INCUMBENT = 6
    #: ``retrain``: no dataset, an unknown snapshot, or too little labelled data to train and
    #: validate on. Retrying does not help until the accumulator has gathered more.
    NO_TRAINING_DATA = 7
    #: A stage failed (model engine died, delivery failed): let the supervisor restart it.
    STAGE_FAILED = 70
