"""The volume step of a container's life, over ``dockyard.volumes``.

create: ``HostConfig`` Binds/Mounts/Tmpfs/VolumesFrom + ``Config.Volumes`` (image VOLUMEs
included) -> mount plans, volumes made (anonymous ones named), kept in the record as JSON.
start (rootfs mounted): volumes acquired and filled from the image (copy-up), -> OCI mounts.
exit: volumes released. rm -v / --rm: the container's anonymous volumes removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dockyard.daemon.record import ContainerRecord
from dockyard.volumes.model import TYPE_VOLUME

log = logging.getLogger("dockyard.mounts")


def mount_events(plans: Sequence[Any], container_id: str, action: str) -> list[tuple[str, dict[str, str]]]:
    """dockerd's ``volume`` events of a container start (``action="mount"``) or stop
    (``"unmount"``): (volume name, attributes) to pass to ``events.emit("volume", action, ...)``
    on the event loop's thread."""
    out = []
    for p in plans:
        if p.type != TYPE_VOLUME or not p.source:
            continue
        attrs = {"driver": p.driver or "local", "container": container_id}
        if action == "mount":
            attrs.update({"destination": p.destination, "read/write": str(not p.read_only).lower(),
                          "propagation": ""})
        out.append((p.source, attrs))
    return out


class Mounts:
    def __init__(self, service: Any, plans_of: Callable[[str], list[Any]]) -> None:
        self.vols = service  # dockyard.volumes.service.VolumeService, or None
        self.plans_of = plans_of  # container ref -> its plans (for --volumes-from)

    def plan(self, cid: str, host_config: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        """Blocking (call in a worker thread)."""
        if self.vols is None:
            return []
        from dockyard.volumes import spec
        plans = spec.plan_mounts(host_config, list((config.get("Volumes") or {}).keys()),
                                 volumes_from=self.plans_of)
        return [p.to_json() for p in self.vols.prepare(plans, cid)]

    def events(self, rec: ContainerRecord, action: str) -> list[tuple[str, dict[str, str]]]:
        """The ``volume`` events (name, attributes) of ``rec``'s start ("mount") or exit ("unmount")."""
        if self.vols is None or not rec.mounts:
            return []
        return mount_events(self.plans(rec), rec.id, action)

    @staticmethod
    def plans(rec: ContainerRecord) -> list[Any]:
        from dockyard.volumes.model import MountPlan
        return [MountPlan.from_json(d) for d in rec.mounts]

    def start(self, rec: ContainerRecord, rootfs: Path) -> list[dict[str, Any]]:
        """Acquire and fill the volumes; the OCI mounts for the spec."""
        if self.vols is None or not rec.mounts:
            return []
        from dockyard.volumes import oci
        live = self.vols.mount_all(self.plans(rec), rec.id, rootfs)
        return oci.oci_mounts(live)

    def stop(self, rec: ContainerRecord) -> None:
        if self.vols is None or not rec.mounts:
            return
        try:
            self.vols.unmount_all(self.plans(rec), rec.id)
        except Exception:  # noqa: BLE001 - an exit must complete; reconcile cleans up later
            log.exception("releasing the volumes of %s", rec.id)

    def remove_anonymous(self, rec: ContainerRecord) -> None:
        if self.vols is None or not rec.mounts:
            return
        try:
            self.vols.remove_anonymous(self.plans(rec))
        except Exception:  # noqa: BLE001
            log.exception("removing the anonymous volumes of %s", rec.id)
