"""Bounded exponential backoff, shared by the S3, DynamoDB and Kafka stages."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import botocore.exceptions

from .errors import InfrastructureError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Error codes AWS services return for a request worth repeating as it is.
_TRANSIENT_AWS_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "TransactionInProgressException",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying one operation before giving up with exit 4."""

    total_seconds: float = 300.0
    initial_backoff: float = 0.2
    max_backoff: float = 10.0

    def backoffs(self) -> Callable[[], float | None]:
        """A function returning the next sleep, or None once the budget is spent."""
        deadline = time.monotonic() + self.total_seconds
        attempt = 0

        def next_sleep() -> float | None:
            nonlocal attempt
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            delay = min(self.max_backoff, self.initial_backoff * 2**attempt)
            attempt += 1
            # Full jitter keeps two retrying processes from hammering in step.
            return min(remaining, random.uniform(delay / 2, delay))  # noqa: S311 (not crypto)

        return next_sleep


def is_transient_aws(error: BaseException) -> bool:
    """True for AWS errors that a later identical request may not hit: throttling, 5xx, resets."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_AWS_CODES or status >= 500 or status == 429
    return isinstance(
        error,
        botocore.exceptions.HTTPClientError
        | botocore.exceptions.ConnectionError
        | botocore.exceptions.ResponseStreamingError
        # A body that ends before its Content-Length (the connection closed cleanly too soon).
        | botocore.exceptions.IncompleteReadError
        | ConnectionError
        | TimeoutError,
    )


def retry_call(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    is_transient: Callable[[BaseException], bool] = is_transient_aws,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient errors within ``policy``'s budget.

    A non-transient error propagates at once; a transient one that outlives the budget becomes
    an InfrastructureError naming ``what``.
    """
    next_sleep = policy.backoffs()
    while True:
        try:
            return fn()
        except Exception as err:
            if not is_transient(err):
                raise
            delay = next_sleep()
            if delay is None:
                raise InfrastructureError(
                    f"{what} kept failing for {policy.total_seconds:.0f}s: {err}"
                ) from err
            if on_retry is not None:
                on_retry(err)
            logger.warning("%s failed (%s); retrying in %.1fs", what, err, delay)
            time.sleep(delay)
