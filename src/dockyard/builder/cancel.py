"""Stopping a build whose client went away.

The API sets a ``threading.Event`` (``BuildOptions.cancel``) when the connection closes; the
executor checks it between steps and a running RUN step polls it while waiting for output, so
the step container is killed within half a second. Either way :class:`Cancelled` unwinds the
build through the same cleanup as a failed step (mounts, snapshots, bundle, container).
"""

from __future__ import annotations

from dockyard.errors import DockyardError


class Cancelled(DockyardError):
    """The client went away: the build stops, undoing the current step."""
