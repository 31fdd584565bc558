"""One error tree for HTTP and gRPC."""

from __future__ import annotations

import grpc
import pytest

from pinecone_rag import errors


@pytest.mark.parametrize(
    ("cls", "status", "code", "grpc_code"),
    [
        (errors.InvalidArgumentError, 400, "INVALID_ARGUMENT", grpc.StatusCode.INVALID_ARGUMENT),
        (errors.UnauthenticatedError, 401, "UNAUTHENTICATED", grpc.StatusCode.UNAUTHENTICATED),
        (errors.ForbiddenError, 403, "FORBIDDEN", grpc.StatusCode.PERMISSION_DENIED),
        (errors.NotFoundError, 404, "NOT_FOUND", grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExistsError, 409, "ALREADY_EXISTS", grpc.StatusCode.ALREADY_EXISTS),
        (errors.ResourceExhaustedError, 429, "RESOURCE_EXHAUSTED", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.UnavailableError, 503, "UNAVAILABLE", grpc.StatusCode.UNAVAILABLE),
        (errors.InternalError, 500, "INTERNAL", grpc.StatusCode.INTERNAL),
    ],
)
def test_codes_agree_across_transports(
    cls: type[errors.ApiError], status: int, code: str, grpc_code: grpc.StatusCode
) -> None:
    assert (cls.status, cls.code, cls.grpc_code) == (status, code, grpc_code.value[0])
    assert errors.error_for_http_status(status) is cls
    assert errors.error_for_grpc_code(grpc_code.value[0]) is cls


def test_bodies_have_pinecone_shapes() -> None:
    error = errors.NotFoundError("Index docs not found.")
    assert error.control_plane_body() == {
        "error": {"code": "NOT_FOUND", "message": "Index docs not found."},
        "status": 404,
    }
    assert error.data_plane_body() == {"code": 5, "message": "Index docs not found.", "details": []}
    assert str(error) == "(404 NOT_FOUND) Index docs not found."


def test_unknown_codes_fall_back_sensibly() -> None:
    assert errors.error_for_http_status(418) is errors.ApiError
    assert errors.error_for_http_status(502) is errors.InternalError
    assert errors.error_for_grpc_code(10) is errors.AlreadyExistsError  # ABORTED maps to 409 in grpc-gateway
    assert issubclass(errors.ConfigurationError, ValueError)
