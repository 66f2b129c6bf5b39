"""Which exceptions mean a stage's model engine is gone, as opposed to one bad record.

Worker stages expose :func:`engine_failed` as their ``is_fatal`` hook: the runner then stops
the worker (its supervisor restarts it) rather than dead-lettering everything that follows.
"""

from __future__ import annotations

_ENGINE_FAILURES = ("out of memory", "cuda error", "cublas", "cudnn", "device-side assert")


def engine_failed(exc: BaseException) -> bool:
    """The model engine itself failed (memory, device): no record can be processed."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(sign in text for sign in _ENGINE_FAILURES)
