"""The ONE mapping from the error vocabulary to HTTP status codes."""

from __future__ import annotations

from dockyard import errors

STATUS: dict[type[errors.DockyardError], int] = {
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.InvalidArgument: 400,
    errors.NotModified: 304,
    errors.Unavailable: 503,
    errors.PermissionDenied: 403,
    errors.NotImplementedYet: 501,
    errors.Internal: 500,
}


def status_of(err: BaseException) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500
