"""One error tree for HTTP and gRPC, shared by the client and the local engine.

```
PineconeError
├── ConfigurationError (also ValueError)      bad or missing settings, raised before any I/O
├── RecordError (also ValueError)             a record given to upsert is malformed; nothing was sent
├── PineconeConnectionError                   the service could not be reached (refused, reset, DNS)
├── PineconeTimeoutError (also TimeoutError)  no answer within the timeout
└── ApiError                                  the service answered with an error
    ├── InvalidArgumentError      400  INVALID_ARGUMENT     gRPC 3
    ├── UnauthenticatedError      401  UNAUTHENTICATED      gRPC 16   (alias UnauthorizedError)
    ├── ForbiddenError            403  FORBIDDEN            gRPC 7
    ├── NotFoundError             404  NOT_FOUND            gRPC 5
    ├── AlreadyExistsError        409  ALREADY_EXISTS       gRPC 6    (alias ConflictError)
    ├── FailedPreconditionError   412  FAILED_PRECONDITION  gRPC 9
    ├── PayloadTooLargeError      413  PAYLOAD_TOO_LARGE    gRPC 3
    ├── UnprocessableEntityError  422  UNPROCESSABLE_ENTITY gRPC 3
    ├── ResourceExhaustedError    429  RESOURCE_EXHAUSTED   gRPC 8    (alias RateLimitError)
    ├── DeadlineExceededError     504  DEADLINE_EXCEEDED    gRPC 4    (also PineconeTimeoutError)
    └── ServiceError                                        the service failed (5xx)
        ├── InternalError         500  INTERNAL             gRPC 13
        ├── DataLossError         500  DATA_LOSS            gRPC 15
        ├── UnimplementedError    501  UNIMPLEMENTED        gRPC 12
        └── UnavailableError      503  UNAVAILABLE          gRPC 14   (also PineconeConnectionError)
```

Each class knows its HTTP status, its control-plane code name and its gRPC status code, so the server
serialises an error once and the client rebuilds the same class from either transport
(:func:`error_for_http_status`, :func:`error_for_grpc_code`). This module imports nothing from grpc.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PineconeError(Exception):
    """Base class of every error raised by pinecone_rag."""


class ConfigurationError(PineconeError, ValueError):
    """Settings are missing or invalid (for example no API key); raised before any request is sent."""


class RecordError(PineconeError, ValueError):
    """A record passed to upsert is malformed (the message names its position); nothing was sent."""


class UpsertError(PineconeError):
    """Some records of an upsert were not written after every retry (see ``UpsertResult.failed``).

    Raised by :meth:`pinecone_rag.UpsertResult.raise_for_failures`; the first batch's error is its
    ``__cause__``.

    Attributes:
        failed_ids: The ids of every record that was not written, in input order of their batches.
        upserted_count: How many records were written.
    """

    def __init__(self, message: str, failed_ids: list[str], upserted_count: int) -> None:
        super().__init__(message)
        self.failed_ids = failed_ids
        self.upserted_count = upserted_count


class PineconeConnectionError(PineconeError):
    """The service could not be reached: connection refused or reset, name resolution failed."""


class PineconeTimeoutError(PineconeError, TimeoutError):
    """The call did not complete within its timeout."""


class ApiError(PineconeError):
    """An error answered by Pinecone or by the local engine.

    Attributes:
        message: What went wrong, as the service said it.
        status: The HTTP status (also set for gRPC errors, through the gateway mapping).
        code: The control-plane code name, e.g. ``"NOT_FOUND"``.
        grpc_code: The numeric gRPC status code, e.g. ``5``.
        details: Extra structured detail from the response body, if any.
        request_id: The request id the service returned, if any.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "UNKNOWN"
    grpc_code: ClassVar[int] = 2

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"({self.status} {self.code}) {self.message}"

    def control_plane_body(self) -> dict[str, Any]:
        """The control-plane JSON shape: ``{"error": {"code", "message"}, "status"}``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error, "status": self.status}

    def data_plane_body(self) -> dict[str, Any]:
        """The data-plane JSON shape (google.rpc.Status): ``{"code", "message", "details"}``."""
        return {"code": self.grpc_code, "message": self.message, "details": []}


class InvalidArgumentError(ApiError):
    """The request is malformed or breaks a documented limit."""

    status = 400
    code = "INVALID_ARGUMENT"
    grpc_code = 3


class UnauthenticatedError(ApiError):
    """The API key is missing or not valid."""

    status = 401
    code = "UNAUTHENTICATED"
    grpc_code = 16


class ForbiddenError(ApiError):
    """The operation is not allowed, e.g. deleting an index with deletion protection."""

    status = 403
    code = "FORBIDDEN"
    grpc_code = 7


class NotFoundError(ApiError):
    """The index, namespace or resource does not exist (or belongs to another project)."""

    status = 404
    code = "NOT_FOUND"
    grpc_code = 5


class AlreadyExistsError(ApiError):
    """A resource with that name already exists."""

    status = 409
    code = "ALREADY_EXISTS"
    grpc_code = 6


class FailedPreconditionError(ApiError):
    """The system is not in a state that allows the operation."""

    status = 412
    code = "FAILED_PRECONDITION"
    grpc_code = 9


class PayloadTooLargeError(ApiError):
    """The request body is larger than the service accepts."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"
    grpc_code = 3


class UnprocessableEntityError(ApiError):
    """The body is not valid JSON or misses a required field."""

    status = 422
    code = "UNPROCESSABLE_ENTITY"
    grpc_code = 3


class ResourceExhaustedError(ApiError):
    """Back-pressure or a quota: retry after ``retry_after`` seconds when it is set."""

    status = 429
    code = "RESOURCE_EXHAUSTED"
    grpc_code = 8


class ServiceError(ApiError):
    """The service failed (HTTP 5xx); idempotent calls may be retried."""

    status = 500
    code = "INTERNAL"
    grpc_code = 13


class InternalError(ServiceError):
    """The service failed; the request may be retried if it is idempotent."""

    status = 500
    code = "INTERNAL"
    grpc_code = 13


class DataLossError(ServiceError):
    """Stored data failed a checksum and could not be served."""

    status = 500
    code = "DATA_LOSS"
    grpc_code = 15


class UnimplementedError(ServiceError):
    """The operation is not supported by this service or API version."""

    status = 501
    code = "UNIMPLEMENTED"
    grpc_code = 12


class UnavailableError(ServiceError, PineconeConnectionError):
    """The service could not be reached or is shutting down; safe to retry."""

    status = 503
    code = "UNAVAILABLE"
    grpc_code = 14


class DeadlineExceededError(ApiError, PineconeTimeoutError):
    """The request did not finish within its deadline."""

    status = 504
    code = "DEADLINE_EXCEEDED"
    grpc_code = 4


UnauthorizedError = UnauthenticatedError
"""The name Pinecone's SDKs use for HTTP 401."""
ConflictError = AlreadyExistsError
"""The name Pinecone's SDKs use for HTTP 409."""
RateLimitError = ResourceExhaustedError
"""The name Pinecone's SDKs use for HTTP 429."""

_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        ForbiddenError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        PayloadTooLargeError,
        UnprocessableEntityError,
        ResourceExhaustedError,
        InternalError,
        UnimplementedError,
        UnavailableError,
        DeadlineExceededError,
    )
}

_BY_GRPC_CODE: dict[int, type[ApiError]] = {
    cls.grpc_code: cls
    for cls in (
        DeadlineExceededError,
        NotFoundError,
        AlreadyExistsError,
        ForbiddenError,
        ResourceExhaustedError,
        FailedPreconditionError,
        UnimplementedError,
        InternalError,
        UnavailableError,
        DataLossError,
        UnauthenticatedError,
        InvalidArgumentError,  # last: 3 is shared with 413/422, and 400 is what gRPC means by it
    )
}

# grpc-gateway's mapping for the codes that have no class of their own.
_GRPC_TO_HTTP: dict[int, int] = {1: 499, 2: 500, 10: 409, 11: 400}


def error_for_http_status(status: int) -> type[ApiError]:
    """The error class for an HTTP status (``ApiError`` itself when none is more specific)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return InternalError
    return ApiError


def error_for_grpc_code(code: int) -> type[ApiError]:
    """The error class for a numeric gRPC status code."""
    if code in _BY_GRPC_CODE:
        return _BY_GRPC_CODE[code]
    return error_for_http_status(_GRPC_TO_HTTP.get(code, 500))


__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "ConfigurationError",
    "ConflictError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "ForbiddenError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PineconeConnectionError",
    "PineconeError",
    "PineconeTimeoutError",
    "RateLimitError",
    "RecordError",
    "ResourceExhaustedError",
    "ServiceError",
    "UnauthenticatedError",
    "UnauthorizedError",
    "UnavailableError",
    "UnimplementedError",
    "UnprocessableEntityError",
    "error_for_grpc_code",
    "error_for_http_status",
]
