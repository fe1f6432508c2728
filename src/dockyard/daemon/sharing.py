"""Namespaces shared with another container: ``--network|--pid|--ipc container:<name|id>``.

Lifecycle, as dockerd's:

- create: :func:`validate_create` refuses options that contradict a shared network namespace
  (400, moby's runconfig wording); :func:`resolve_donors` rewrites ``container:<name>`` to
  ``container:<full id>`` when the donor exists (inspect shows the id; a donor that doesn't
  exist yet is not an error until start, as with dockerd).
- start: :func:`donor` finds the donor, which must be running (409 otherwise); the joiner's
  OCI spec then names ``/proc/<donor init pid>/ns/<net|pid|ipc>`` as the namespace *path* to
  join (:func:`ns_path`). A network joiner also takes the donor's hostname/domainname and
  bind-mounts the donor's own /etc/hosts, resolv.conf and hostname files; it has no endpoint of
  its own (inspect: empty ``NetworkSettings.Networks``) and nothing to tear down at exit.
- donor exit: the joiner keeps the namespace it holds (the kernel keeps it alive); the donor's
  veths are deleted explicitly (:func:`joiners` says when), so the address it had goes back to
  the pool without a stale interface answering for it, and the joiner is left with loopback.

Chains are allowed: C joining B joining A all end up in A's namespace and A's /etc files.

IPC: as dockerd's default, containers are ``private``; ``--ipc container:<x>`` needs a donor
started with ``--ipc shareable``, whose host-side /dev/shm (:mod:`dockyard.daemon.shm`) the
joiner bind-mounts; ``--ipc host`` binds the host's /dev/shm, ``--ipc none`` has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dockyard import errors
from dockyard.daemon.record import ContainerRecord
from dockyard.daemon.state import Status

PREFIX = "container:"
# kind -> (HostConfig field, /proc/<pid>/ns/<file>)
KINDS = {"network": ("NetworkMode", "net"), "pid": ("PidMode", "pid"), "ipc": ("IpcMode", "ipc")}


def donor_ref(hc: dict[str, Any], kind: str) -> str | None:
    """The donor named by ``container:<ref>`` in the kind's HostConfig field, else None."""
    mode = hc.get(KINDS[kind][0]) or ""
    if not isinstance(mode, str) or not mode.startswith(PREFIX):
        return None
    return mode[len(PREFIX):]


def validate_create(body: dict[str, Any], hc: dict[str, Any]) -> None:
    """Options that make no sense in another container's network namespace (moby's
    ``validateNetContainerMode``, same order and messages); ``body`` is the create request."""
    for kind in KINDS:
        ref = donor_ref(hc, kind)
        if ref is not None and not ref:
            what = "network" if kind == "network" else kind.upper()
            raise errors.InvalidArgument(
                f"Invalid {what} mode: invalid container format container:<name|id>")
    ipc, pid = hc.get("IpcMode") or "", hc.get("PidMode") or ""
    if ipc not in ("", "private", "shareable", "host", "none") and not ipc.startswith(PREFIX):
        raise errors.InvalidArgument(f"invalid IPC mode: {ipc}")
    if pid not in ("", "host") and not pid.startswith(PREFIX):
        raise errors.InvalidArgument(f"invalid PID mode: {pid}")
    if not ipc:
        hc["IpcMode"] = "private"  # dockerd's default-ipc-mode, shown by inspect
    if donor_ref(hc, "network") is None:
        return
    eps = ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).values()
    checks = (
        (bool(body.get("Hostname")), "conflicting options: hostname and the network mode"),
        (bool(hc.get("Links")), "conflicting options: container type network can't be used with "
                                "links. This would result in undefined behavior"),
        (bool(hc.get("Dns")), "conflicting options: dns and the network mode"),
        (bool(hc.get("ExtraHosts")), "conflicting options: custom host-to-IP mapping and the network mode"),
        (bool(hc.get("PortBindings")) or bool(hc.get("PublishAllPorts")),
         "conflicting options: port publishing and the container type network mode"),
        (bool(body.get("ExposedPorts")),
         "conflicting options: port exposing and the container type network mode"),
        (bool(body.get("MacAddress")) or any(isinstance(e, dict) and e.get("MacAddress") for e in eps),
         "conflicting options: mac-address and the network mode"),
    )
    for bad, msg in checks:
        if bad:
            raise errors.InvalidArgument(msg)


def resolve_donors(hc: dict[str, Any], find: Callable[[str], ContainerRecord | None]) -> None:
    """``container:<name or id prefix>`` -> ``container:<full id>`` for donors that exist."""
    for kind, (fld, _) in KINDS.items():
        ref = donor_ref(hc, kind)
        if ref:
            rec = find(ref)
            if rec is not None:
                hc[fld] = PREFIX + rec.id


def donor(joiner: ContainerRecord, kind: str, find: Callable[[str], ContainerRecord | None]) -> ContainerRecord:
    """The running container whose ``kind`` namespace ``joiner`` joins at start (dockerd's
    ``getNetworkedContainer``/``getPIDContainer``/``getIPCContainer`` checks and wording)."""
    ref = donor_ref(joiner.host_config, kind)
    if ref is None:
        raise errors.Internal(f"container {joiner.id} does not share a {kind} namespace")
    rec = find(ref)
    if kind == "network":
        if rec is None:
            raise errors.Internal(f"joining network namespace of container: No such container: {ref}")
        if rec.id == joiner.id:
            raise errors.Internal("cannot join own network namespace")
        if rec.status is Status.RESTARTING:
            raise errors.Conflict(f"cannot join network namespace of container: Container {ref} is "
                                  "restarting, wait until the container is running")
        if rec.status not in (Status.RUNNING, Status.PAUSED) or rec.state.pid <= 0:
            raise errors.Conflict(f"cannot join network namespace of a non running container: "
                                  f"container {rec.name} is {rec.status.value}")
        return rec
    if rec is None:
        raise errors.InvalidArgument(f"No such container: {ref}")
    if rec.id == joiner.id:
        raise errors.InvalidArgument(f"cannot join own {kind.upper()} namespace")
    if rec.status is Status.RESTARTING:
        raise errors.Conflict(f"Container {rec.id} is restarting, wait until the container is running")
    if rec.status not in (Status.RUNNING, Status.PAUSED) or rec.state.pid <= 0:
        raise errors.Conflict(f"container {rec.id} is not running")
    return rec


def ns_path(donor_rec: ContainerRecord, kind: str) -> str:
    """Where the runtime opens the donor's namespace: its init's nsfs file (held open by the
    runtime's setns, so the joiner keeps it whatever the donor does afterwards)."""
    return f"/proc/{donor_rec.state.pid}/ns/{KINDS[kind][1]}"


def network_root(rec: ContainerRecord, find: Callable[[str], ContainerRecord | None]) -> ContainerRecord:
    """The container that owns the network namespace ``rec`` is in (itself unless it joined
    another one, following chains; a dangling or cyclic chain stops where it breaks)."""
    seen = {rec.id}
    while True:
        ref = donor_ref(rec.host_config, "network")
        nxt = find(ref) if ref else None
        if nxt is None or nxt.id in seen:
            return rec
        seen.add(nxt.id)
        rec = nxt


def joiners(owner: ContainerRecord, containers: Iterable[ContainerRecord],
            find: Callable[[str], ContainerRecord | None]) -> list[ContainerRecord]:
    """Running containers other than ``owner`` that are in ``owner``'s network namespace."""
    return [c for c in containers
            if c.id != owner.id and c.status in (Status.RUNNING, Status.PAUSED)
            and donor_ref(c.host_config, "network") is not None
            and network_root(c, find).id == owner.id]
