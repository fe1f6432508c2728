"""Container mount inputs -> resolved :class:`MountPlan` values, with docker's rules and messages.

What arrives at ``POST /containers/create`` (the docker CLI parses ``--mount`` itself but sends
``-v`` specs as raw strings):

- ``HostConfig.Binds``: ``"src:dst[:mode]"``; ``src`` absolute -> bind mount, else a volume name
  (``-v /dst`` alone goes to ``Config.Volumes``: the CLI moves it there). ``mode`` is a comma
  list of at most one each of ``rw|ro``, ``z|Z`` (SELinux, ignored here), a propagation
  (``[r]private|[r]shared|[r]slave``), ``nocopy``, and a consistency (``consistent|cached|delegated``).
- ``HostConfig.Mounts``: ``{"Type", "Source", "Target", "ReadOnly", "BindOptions",
  "VolumeOptions", "TmpfsOptions"}`` objects.
- ``HostConfig.Tmpfs``: ``{"/dst": "size=64m,mode=1777"}``.
- ``Config.Volumes`` (and the image's ``VOLUME``s): ``{"/dst": {}}`` -> anonymous volumes.
- ``HostConfig.VolumesFrom``: ``["ctr[:ro|rw]"]`` -> that container's mounts again.

:func:`plan_mounts` applies them in dockerd's order (volumes-from, binds, mounts, then
anonymous volumes for destinations still free) and returns plans sorted parents-first.
Errors are :class:`~dockyard.errors.InvalidArgument` with dockerd's text
(``invalid volume specification: '...'``, ``invalid mount config for type "bind": ...``,
``Duplicate mount point: /x``, ``invalid mode: ...``); nothing here touches the disk
except the bind-source existence check of ``--mount`` (as dockerd).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from dockyard.errors import InvalidArgument, NotImplementedYet
from dockyard.volumes.model import DEFAULT_DRIVER, TYPE_BIND, TYPE_TMPFS, TYPE_VOLUME, MountPlan

PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
DEFAULT_PROPAGATION = "rprivate"
_RW = ("rw", "ro")
_LABEL = ("z", "Z")
_CONSISTENCY = ("consistent", "cached", "delegated")
_TMPFS_DATA_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
                "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
                "strictatime", "nostrictatime", "defaults", "dirsync", "mand", "nomand"}


class _MountConfigError(InvalidArgument):
    pass


def _config_error(mtype: str, msg: str) -> _MountConfigError:
    return _MountConfigError(f'invalid mount config for type "{mtype}": {msg}')


def _invalid_spec(raw: str) -> InvalidArgument:
    return InvalidArgument(f"invalid volume specification: '{raw}'")


def valid_mode(mode: str) -> bool:
    """docker's linuxValidMountMode: each kind of option at most once, nothing unknown."""
    if mode == "":
        return True
    counts = [0, 0, 0, 0, 0]
    for o in mode.split(","):
        if o in _RW:
            counts[0] += 1
        elif o in _LABEL:
            counts[1] += 1
        elif o in PROPAGATIONS:
            counts[2] += 1
        elif o == "nocopy":
            counts[3] += 1
        elif o in _CONSISTENCY:
            counts[4] += 1
        else:
            return False
    return max(counts) <= 1


def _clean(p: str) -> str:
    """Go's path.Clean (POSIX normpath keeps a leading "//"; Go does not)."""
    if not p:
        return p
    out = posixpath.normpath(p.replace("\\", "/"))
    return "/" + out.lstrip("/") if out.startswith("//") else out


def _check_target(mtype: str, target: str) -> None:
    if not target:
        raise _config_error(mtype, "field Target must not be empty")
    if _clean(target) == "/":
        raise _config_error(mtype, "invalid specification: destination can't be '/'")
    if not target.replace("\\", "/").startswith("/"):
        raise _config_error(mtype, f"invalid mount path: '{target}' mount path must be absolute")


def _tmpfs_options(opts: Mapping[str, Any] | None, read_only: bool) -> str:
    """TmpfsOptions {SizeBytes, Mode, Options} -> mount data, as dockerd's ConvertTmpfsOptions."""
    out: list[str] = ["ro"] if read_only else []
    if not opts:
        return ",".join(out)
    mode = int(opts.get("Mode") or 0)
    if mode:
        out.append(f"mode={mode:o}")
    size = int(opts.get("SizeBytes") or 0)
    if size:
        for suffix, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % div == 0:
                out.append(f"size={size // div}{suffix}")
                break
        else:
            out.append(f"size={size}")
    for opt in opts.get("Options") or []:
        if not isinstance(opt, list) or not 1 <= len(opt) <= 2:
            raise InvalidArgument("invalid option array length")
        if opt[0] not in ("exec", "noexec"):
            raise InvalidArgument(f"invalid option: {opt[0]}")
        out.append(opt[0] if len(opt) == 1 else f"{opt[0]}={opt[1]}")
    return ",".join(out)


def _validate(m: Mapping[str, Any], check_source_exists: bool) -> None:
    """dockerd's validateMountConfig for one Mounts object (or a -v spec made into one)."""
    mtype = str(m.get("Type") or "")
    target = str(m.get("Target") or "")
    source = str(m.get("Source") or "")
    _check_target(mtype, target)
    bind_opts = m.get("BindOptions")
    vol_opts = m.get("VolumeOptions")
    if mtype == TYPE_BIND:
        if not source:
            raise _config_error(mtype, "field Source must not be empty")
        prop = (bind_opts or {}).get("Propagation") or ""
        if prop and prop not in PROPAGATIONS:
            raise _config_error(mtype, f"invalid propagation mode: {prop}")
        if vol_opts is not None:
            raise _config_error(mtype, "field VolumeOptions must not be specified")
        if not source.startswith("/"):
            raise _config_error(mtype, f"invalid mount path: '{source}' mount path must be absolute")
        if check_source_exists and not os.path.lexists(source) and not (bind_opts or {}).get("CreateMountpoint"):
            raise _config_error(mtype, f"bind source path does not exist: {source}")
    elif mtype == TYPE_VOLUME:
        if bind_opts is not None:
            raise _config_error(mtype, "field BindOptions must not be specified")
        subpath = str((vol_opts or {}).get("Subpath") or "")
        if subpath:
            if not source:
                raise _config_error(mtype, "must not set Subpath when using anonymous volumes")
            norm = posixpath.normpath(subpath)
            if subpath.startswith("/") or norm == ".." or norm.startswith("../"):
                raise _config_error(mtype, "subpath must be a relative path within the volume")
        if m.get("ReadOnly") and not source:
            raise _config_error(mtype, "must not set ReadOnly mode when using anonymous volumes")
    elif mtype == TYPE_TMPFS:
        if bind_opts is not None:
            raise _config_error(mtype, "field BindOptions must not be specified")
        if source:
            raise _config_error(mtype, "field Source must not be specified")
        try:
            _tmpfs_options(m.get("TmpfsOptions"), bool(m.get("ReadOnly")))
        except _MountConfigError:
            raise
        except InvalidArgument as e:
            raise _config_error(mtype, str(e)) from None
    elif mtype == "image":
        raise NotImplementedYet('mount type "image" is not supported by Dockyard yet')
    else:
        raise _config_error(mtype, "mount type unknown")


def _to_plan(m: Mapping[str, Any], origin: str) -> MountPlan:
    mtype = str(m["Type"])
    target = _clean(str(m["Target"]))
    source = str(m.get("Source") or "")
    ro = bool(m.get("ReadOnly"))
    if mtype == TYPE_VOLUME:
        vo = m.get("VolumeOptions") or {}
        dc = vo.get("DriverConfig") or {}
        return MountPlan(TYPE_VOLUME, target, source, ro, copy_data=not vo.get("NoCopy"),
                         driver=str(dc.get("Name") or DEFAULT_DRIVER),
                         driver_opts={str(k): str(v) for k, v in (dc.get("Options") or {}).items()},
                         labels={str(k): str(v) for k, v in (vo.get("Labels") or {}).items()},
                         subpath=str(vo.get("Subpath") or ""), origin=origin)
    if mtype == TYPE_BIND:
        bo = m.get("BindOptions") or {}
        return MountPlan(TYPE_BIND, target, _clean(source), ro,
                         propagation=str(bo.get("Propagation") or DEFAULT_PROPAGATION),
                         non_recursive=bool(bo.get("NonRecursive")),
                         create_source=bool(bo.get("CreateMountpoint")), origin=origin)
    return MountPlan(TYPE_TMPFS, target, "", ro, origin=origin,
                     tmpfs_data=_tmpfs_options(m.get("TmpfsOptions"), False))


def parse_bind(raw: str, volume_driver: str = "") -> MountPlan:
    """One ``HostConfig.Binds`` entry (dockerd's ParseMountRaw for Linux)."""
    arr = raw.split(":", 3)
    if arr[0] == "":
        raise _invalid_spec(raw)
    mode = ""
    if len(arr) == 1:
        source, target = "", arr[0]
    elif len(arr) == 2:
        if valid_mode(arr[1]):  # "/foo:rw": a destination with a mode is not a volume
            raise _invalid_spec(raw)
        source, target = arr
    elif len(arr) == 3:
        source, target, mode = arr
    else:
        raise _invalid_spec(raw)
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    opts = mode.split(",") if mode else []
    m: dict[str, Any] = {"Type": TYPE_BIND if source.startswith("/") else TYPE_VOLUME,
                         "Source": source, "Target": target, "ReadOnly": "ro" in opts}
    if volume_driver and m["Type"] == TYPE_VOLUME:
        m["VolumeOptions"] = {"DriverConfig": {"Name": volume_driver}}
    if "nocopy" in opts:
        m.setdefault("VolumeOptions", {})["NoCopy"] = True
    prop = next((o for o in opts if o in PROPAGATIONS), "")
    if prop:
        m["BindOptions"] = {"Propagation": prop}
    try:
        _validate(m, check_source_exists=False)
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid volume specification: '{raw}': {e}") from None
    plan = _to_plan(m, "binds")
    # -v creates a missing host directory (docker's historical behaviour; --mount refuses)
    return replace(plan, mode=mode, create_source=plan.type == TYPE_BIND)


def parse_mount(m: Mapping[str, Any]) -> MountPlan:
    """One ``HostConfig.Mounts`` object (dockerd's ParseMountSpec, bind source must exist)."""
    if not isinstance(m, Mapping):
        raise InvalidArgument("invalid mount config: expected an object")
    _validate(m, check_source_exists=True)
    return _to_plan(m, "mounts")


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``"ctr[:mode]"`` -> (container, mode); mode defaults to "rw", no propagation or nocopy."""
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ctr, _, mode = spec.partition(":")
    if not mode:
        return ctr, "rw"
    if not valid_mode(mode) or any(o in PROPAGATIONS or o == "nocopy" for o in mode.split(",")):
        raise InvalidArgument(f"invalid mode: {mode}")
    return ctr, mode


def parse_tmpfs(dest: str, options: str) -> MountPlan:
    """One ``HostConfig.Tmpfs`` entry (``--tmpfs /run:size=64m,mode=1777``)."""
    if _clean(dest) == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{dest}' mount path must be absolute")
    ro = False
    for o in (options or "").split(","):
        if not o:
            continue
        key = o.split("=", 1)[0]
        if o in _TMPFS_FLAGS:
            ro = o == "ro" or (ro and o != "rw")
            continue
        if key not in _TMPFS_DATA_KEYS or "=" not in o:
            raise InvalidArgument(f"invalid tmpfs option [\"{o}\"] for {dest}")
    return MountPlan(TYPE_TMPFS, _clean(dest), "", ro, tmpfs_data=options or "", origin="tmpfs")


def _duplicate(dest: str) -> InvalidArgument:
    return InvalidArgument(f"Duplicate mount point: {dest}")


def plan_mounts(host_config: Mapping[str, Any], config_volumes: Iterable[str] = (), *,
                volumes_from: Callable[[str], Sequence[MountPlan | Mapping[str, Any]]] | None = None) -> list[MountPlan]:
    """All of a container's mounts, in dockerd's precedence.

    ``config_volumes``: ``Config.Volumes`` keys merged with the image's ``VOLUME``s.
    ``volumes_from(ref)`` returns another container's plans, as MountPlan values or their
    ``to_json()`` dicts (raising NotFound if ``ref`` is unknown).
    The result is sorted by destination depth, parents first, as mounts must be applied.
    """
    points: dict[str, MountPlan] = {}
    for spec in host_config.get("VolumesFrom") or []:
        ref, mode = parse_volumes_from(str(spec))
        if volumes_from is None:
            raise NotImplementedYet("--volumes-from needs the container service")
        rw = "ro" not in mode.split(",")
        for item in volumes_from(ref):
            p = MountPlan.from_json(dict(item)) if isinstance(item, Mapping) else item
            if p.type == TYPE_TMPFS:
                continue  # dockerd keeps only volume and bind mount points
            points[p.destination] = replace(p, read_only=p.read_only or not rw, copy_data=False,
                                            origin="volumes-from", host_path="")
    tmpfs = {_clean(str(k)): str(v or "") for k, v in (host_config.get("Tmpfs") or {}).items()}
    taken: set[str] = set()
    driver = str(host_config.get("VolumeDriver") or "")
    for raw in host_config.get("Binds") or []:
        p = parse_bind(str(raw), driver)
        if p.destination in taken or p.destination in tmpfs:
            raise _duplicate(p.destination)
        taken.add(p.destination)
        points[p.destination] = p
    for m in host_config.get("Mounts") or []:
        p = parse_mount(m)
        if p.destination in taken or p.destination in tmpfs:
            raise _duplicate(str(m.get("Target")))
        taken.add(p.destination)
        points[p.destination] = p
    for dest, opts in tmpfs.items():
        points[dest] = parse_tmpfs(dest, opts)
    for raw in config_volumes:
        dest = _clean(str(raw))
        if dest == "/" or not dest.startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{raw}'")
        if dest not in points:
            points[dest] = MountPlan(TYPE_VOLUME, dest, "", driver=driver or DEFAULT_DRIVER, origin="image")
    return sorted(points.values(), key=lambda p: p.destination.count("/"))
