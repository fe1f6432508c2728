"""The volume step of a container's life, over ``dockyard.volumes``.

create: ``HostConfig`` Binds/Mounts/Tmpfs/VolumesFrom + ``Config.Volumes`` (image VOLUMEs
included) -> mount plans, volumes made (anonymous ones named), kept in the record as JSON.
start (rootfs mounted): volumes acquired and filled from the image (copy-up), -> OCI mounts.
exit: volumes released. rm -v / --rm: the container's anonymous volumes removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockyard.daemon.record import ContainerRecord

log = logging.getLogger("dockyard.mounts")


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
