"""caslie-stream: the ``caslie`` command line (composes schemas, streams, workers, training)."""

__version__ = "0.1.0"
