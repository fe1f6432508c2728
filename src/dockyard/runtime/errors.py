"""Runtime-specific refinements of the project's error vocabulary (``dockyard.errors``).

The engine maps a container's missing command to exit 127 and a non-executable one to 126
by these classes (never by message text); messages keep runc's wording.
"""

from __future__ import annotations

from dockyard.errors import NotFound, PermissionDenied


class ExecutableNotFound(NotFound):
    """``exec: "x": executable file not found in $PATH`` / ``stat x: no such file or directory``."""


class ExecutableNotRunnable(PermissionDenied):
    """``exec: "x": permission denied`` (a directory, or no execute bit)."""
