"""One small error vocabulary for the whole project.

Every layer raises these; nobody classifies an error by its message text. They are mapped to
HTTP status codes only in ``api/``, to registry error codes only in ``registry/`` and to exit
codes only in ``cli/`` and ``runtime/cli``.
"""

from __future__ import annotations


class DockyardError(Exception):
    """Base class. ``str(err)`` is the message a user sees."""


class NotFound(DockyardError):
    """The named thing (container, image, exec, network, volume, blob...) does not exist."""


class AlreadyExists(DockyardError):
    """A thing with that name or id exists already."""


class Conflict(DockyardError):
    """The thing exists but its state forbids the operation (running, in use...)."""


class InvalidArgument(DockyardError):
    """The caller's input is malformed or out of range."""


class NotModified(DockyardError):
    """Nothing to do: the thing is already in the requested state (HTTP 304)."""


class Unavailable(DockyardError):
    """A dependency (the kernel feature, a registry, the monitor) can't serve now."""


class PermissionDenied(DockyardError):
    """Authentication or authorisation refused."""


class NotImplementedYet(DockyardError):
    """A documented feature that Dockyard does not offer yet (HTTP 501)."""


class Internal(DockyardError):
    """A bug or an unexpected system failure."""
