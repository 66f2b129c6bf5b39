"""Which stage exceptions mean the model engine is gone (stop the worker) and which are one
bad record (dead-letter it)."""

from __future__ import annotations

import pytest

from workers.engine import engine_failed


class OutOfMemoryError(RuntimeError):  # the name torch.cuda.OutOfMemoryError has
    pass


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"),
        RuntimeError("CUDA error: an illegal memory access was encountered"),
        RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"),
    ],
)
def test_engine_failures(exc: BaseException) -> None:
    assert engine_failed(exc)


@pytest.mark.parametrize(
    "exc",
    [ValueError("out of memory in a string field"), KeyError("title"), RuntimeError("shape")],
)
def test_record_failures(exc: BaseException) -> None:
    assert not engine_failed(exc)
