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
    #: The broker could not be started or reached, or a wait timed out. (``retrain`` also
    #: uses it for a missing training backend; ``run`` says :attr:`BACKEND_MISSING`.)
    UNAVAILABLE = 4
    #: Not every expected record arrived (demo, consume --max).
    INCOMPLETE = 5
    #: ``retrain``: the gate kept the incumbent, the candidate was not better. The run did its
    #: job: a scheduler treats it as success (the CronJob maps it to 0).
    KEPT_INCUMBENT = 6
    #: ``retrain``: no dataset, an unknown snapshot, or too little labelled data to train and
    #: validate on. Retrying does not help until the accumulator has gathered more.
    NO_TRAINING_DATA = 7
    #: ``run``: a stage's model backend is missing (a package such as vLLM, a GPU, the
    #: Tesseract binary, a model folder): the message says how to get it. Restarting does not
    #: help until the image or the config changes.
    BACKEND_MISSING = 8
    #: A setting has an invalid value or is unknown (``--log-level foo``, a ``CASLIE_*``
    #: variable, a key of the config file): the message names it and what is allowed.
    INVALID_SETTING = 9
    #: The config file (``--config``, ``CASLIE_CONFIG``) is missing, unreadable or not TOML.
    CONFIG_FILE = 10
    #: ``run``: no stage of that name (the message lists the known ones).
    UNKNOWN_STAGE = 11
    #: ``eval``, ``rollback``: the adapter registry holds no version of that adapter (or the
    #: registry cannot be opened).
    UNKNOWN_ADAPTER = 12
    #: ``rollback``: the adapter has no version before the current one.
    NOTHING_TO_ROLL_BACK = 13
    #: An output file or folder cannot be written (``schemas export DIR``, ``eval --json``,
    #: ``prepare OUT``): the message names the path and the reason.
    OUTPUT_UNWRITABLE = 14
    #: A stage failed (model engine died, delivery failed): let the supervisor restart it.
    STAGE_FAILED = 70
