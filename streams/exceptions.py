"""Errors of the streaming layer.

StreamError
├── DecodeFailure        a record cannot be decoded or validated (goes to the DLQ)
├── DlqLimitExceeded     too much invalid input: the stage stops instead of draining
├── DeliveryFailed       an output could not be delivered: the stage stops uncommitted
└── BrokerUnavailable    the embedded broker could not be started or reached
"""

from __future__ import annotations

from schemas.dlq import ErrorKind


class StreamError(Exception):
    """Base of the streaming layer's errors."""


class DecodeFailure(StreamError):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class DlqLimitExceeded(StreamError):
    """Raised when invalid input passes the configured DLQ limits."""


class DeliveryFailed(StreamError):
    """Raised when the producer reports a permanent delivery error."""


class BrokerUnavailable(StreamError):
    """Raised when a broker cannot be started or does not answer."""
