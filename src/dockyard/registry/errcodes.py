"""The distribution spec's error codes, as subclasses of the project's error vocabulary.

Each class carries the wire ``code`` and the HTTP ``status``; ``app.py`` turns any of them into
``{"errors": [{"code", "message", "detail"}]}``. Storage code raises these (never strings to be
parsed); plain ``dockyard.errors`` classes raised from elsewhere are mapped by ``classify``.
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import (
    Conflict,
    DockyardError,
    InvalidArgument,
    NotFound,
    NotImplementedYet,
    PermissionDenied,
    Unavailable,
)


class _Coded:
    code: str = "UNKNOWN"
    status: int = 500

    def __init__(self, message: str, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)  # type: ignore[call-arg]
        self.detail = detail
        self.headers = headers or {}


class BlobUnknown(_Coded, NotFound):
    code, status = "BLOB_UNKNOWN", 404


class BlobUploadInvalid(_Coded, InvalidArgument):
    code, status = "BLOB_UPLOAD_INVALID", 400


class BlobUploadUnknown(_Coded, NotFound):
    code, status = "BLOB_UPLOAD_UNKNOWN", 404


class DigestInvalid(_Coded, InvalidArgument):
    code, status = "DIGEST_INVALID", 400


class ManifestBlobUnknown(_Coded, InvalidArgument):
    code, status = "MANIFEST_BLOB_UNKNOWN", 400


class ManifestInvalid(_Coded, InvalidArgument):
    code, status = "MANIFEST_INVALID", 400


class ManifestTooLarge(_Coded, InvalidArgument):
    code, status = "MANIFEST_INVALID", 413


class ManifestUnknown(_Coded, NotFound):
    code, status = "MANIFEST_UNKNOWN", 404


class NameInvalid(_Coded, InvalidArgument):
    code, status = "NAME_INVALID", 400


class NameUnknown(_Coded, NotFound):
    code, status = "NAME_UNKNOWN", 404


class SizeInvalid(_Coded, InvalidArgument):
    code, status = "SIZE_INVALID", 400


class TagInvalid(_Coded, InvalidArgument):
    code, status = "TAG_INVALID", 400


class RangeInvalid(_Coded, InvalidArgument):
    """An out-of-order chunk or a malformed Content-Range: 416 per spec."""

    code, status = "BLOB_UPLOAD_INVALID", 416


class Unauthorized(_Coded, PermissionDenied):
    code, status = "UNAUTHORIZED", 401


class Denied(_Coded, PermissionDenied):
    code, status = "DENIED", 403


class Unsupported(_Coded, NotImplementedYet):
    code, status = "UNSUPPORTED", 405


class UpstreamUnavailable(_Coded, Unavailable):
    code, status = "UNAVAILABLE", 502


# Fallback for the project vocabulary raised by shared code (e.g. Digest.parse).
_FALLBACK: list[tuple[type[DockyardError], str, int]] = [
    (NotFound, "NAME_UNKNOWN", 404),
    (InvalidArgument, "UNSUPPORTED", 400),
    (Conflict, "UNSUPPORTED", 409),
    (PermissionDenied, "DENIED", 403),
    (NotImplementedYet, "UNSUPPORTED", 405),
    (Unavailable, "UNAVAILABLE", 503),
]


def classify(err: DockyardError) -> tuple[str, int, Any, dict[str, str]]:
    """Return (code, status, detail, extra headers) for any project error."""
    if isinstance(err, _Coded):
        return err.code, err.status, err.detail, err.headers
    for cls, code, status in _FALLBACK:
        if isinstance(err, cls):
            return code, status, None, {}
    return "UNKNOWN", 500, None, {}
