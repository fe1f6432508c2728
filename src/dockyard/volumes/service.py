"""VolumeService: named and anonymous volumes of the local driver, and their use by containers.

Synchronous and thread-safe (one lock): the daemon calls it from a worker thread. Layout::

    <root>/                          (<data-root>/volumes)
    └── <name>/
        ├── volume.json              the record (name, driver, created_at, labels, options)
        ├── active.json              container ids holding it mounted (only while some do)
        └── _data/                   the content; a mount point for volumes with type/device

Lifecycle, as the engine drives it::

    vols = VolumeService(data_root / "volumes", in_use=lambda name: [container ids using it])
    v = vols.create("data", labels={...}); vols.get("data"); vols.list({"dangling": ["true"]})
    # container create: -v/--mount/--tmpfs/VOLUME/--volumes-from -> plans, volumes created
    plans = vols.prepare(spec.plan_mounts(host_config, volumes, volumes_from=...), cid)
    # container start: mount on first use, copy the image's content into empty volumes
    plans = vols.mount_all(plans, cid, rootfs)   # plans[i].host_path set; undone on failure
    spec_mounts = oci.oci_mounts(plans)
    # container stop / exit:       vols.unmount_all(plans, cid)
    # docker rm -v / run --rm:     vols.remove_anonymous(plans)
    vols.remove("data")           # Conflict "remove data: volume is in use - [<ids>]"
    vols.prune()                  # anonymous, unused, option-less volumes (docker 23+)
    vols.reconcile(live_ids)      # daemon start: drop refs of dead containers, unmount

A volume is in use while ``in_use(name)`` (the engine's containers, any state, that reference
it) is non-empty or a container holds it through ``acquire``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from dockyard.atomicfile import write_atomic
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.volumes import copyup, local
from dockyard.volumes.model import (
    ANONYMOUS_LABEL,
    DATA_DIR,
    DEFAULT_DRIVER,
    TYPE_BIND,
    TYPE_VOLUME,
    MountPlan,
    Usage,
    Volume,
    check_name,
)

log = logging.getLogger("dockyard.volumes")
LIST_FILTERS = {"dangling", "name", "driver", "label"}
PRUNE_FILTERS = {"label", "label!", "all"}
_TRUE = ("1", "true", "t", "TRUE", "True", "T")
_FALSE = ("0", "false", "f", "FALSE", "False", "F")


def _write_json(path: Path, data: object) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())


def _parse_bool(key: str, v: str) -> bool:
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidArgument(f"invalid filter '{key}={v}'")


def _labels_match(labels: Mapping[str, str], exprs: Iterable[str]) -> bool:
    for e in exprs:
        k, sep, v = e.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def _name_match(name: str, terms: Iterable[str]) -> bool:
    for t in terms:
        if t == name:
            return True
        try:
            if re.search(t, name):
                return True
        except re.error:
            continue
    return False


def dir_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the files under ``path`` (hard links once, symlinks not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [os.fspath(path)]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


class VolumeService:
    def __init__(self, root: str | os.PathLike[str],
                 in_use: Callable[[str], list[str]] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o701)  # like dockerd: others may traverse to _data, not list names
        self.in_use: Callable[[str], list[str]] = in_use or (lambda name: [])
        self._lock = threading.RLock()
        self._vols: dict[str, Volume] = {}
        self._active: dict[str, list[str]] = {}
        for d in sorted(self.root.iterdir()):
            rec = d / "volume.json"
            if not d.is_dir() or d.name.startswith("."):
                continue
            for tmp in d.glob(".*.json.*"):  # _write_json's temp files of a killed daemon
                tmp.unlink(missing_ok=True)
            try:
                v = Volume.from_json(json.loads(rec.read_text()))
            except FileNotFoundError:
                # a create that died before its record, or a remove after it (the record goes
                # first): not a volume, and its folder would make a create of that name fail
                if not local.is_mountpoint(str(d / DATA_DIR)):
                    shutil.rmtree(d, ignore_errors=True)
                continue
            except (ValueError, TypeError, KeyError) as e:
                log.warning("volume record %s is unreadable (%s); moved aside", rec, e)
                os.replace(rec, rec.with_name("volume.json.corrupt"))
                continue
            self._vols[v.name] = v
            try:
                self._active[v.name] = list(json.loads((d / "active.json").read_text()))
            except FileNotFoundError:
                pass
            except ValueError:
                (d / "active.json").unlink()

    # ---- records -------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        return self.root / name

    def create(self, name: str = "", driver: str = DEFAULT_DRIVER,
               driver_opts: Mapping[str, str] | None = None,
               labels: Mapping[str, str] | None = None) -> Volume:
        """A new volume, or the existing one of that name (as dockerd: create is idempotent).
        An empty name makes an anonymous volume (64-hex name, the anonymous label)."""
        driver = driver or DEFAULT_DRIVER
        if driver != DEFAULT_DRIVER:
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        opts = {str(k): str(v) for k, v in (driver_opts or {}).items()}
        if not name:
            name = secrets.token_hex(32)
            labels[ANONYMOUS_LABEL] = ""
        check_name(name)
        try:
            local.validate(opts)
        except InvalidArgument as e:
            raise InvalidArgument(f"create {name}: {e}") from None
        with self._lock:
            if name in self._vols:
                return self._vols[name]
            d = self._dir(name)
            created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            v = Volume(name, driver, str(d / DATA_DIR), created, labels, opts)
            with ExitStack() as undo:
                d.mkdir()
                undo.callback(shutil.rmtree, d, True)
                (d / DATA_DIR).mkdir(mode=0o755)
                _write_json(d / "volume.json", v.to_json())
                undo.pop_all()
            self._vols[name] = v
            return v

    def get(self, name: str) -> Volume:
        with self._lock:
            v = self._vols.get(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def users(self, name: str) -> list[str]:
        """Containers referencing ``name`` (the engine's view) or holding it mounted."""
        with self._lock:
            active = list(self._active.get(name, []))
        for attempt in range(5):
            try:
                out = list(self.in_use(name))
                break
            except RuntimeError:
                # the engine's callback may walk a dict its event loop is changing right now
                # ("dictionary changed size during iteration"): read again
                if attempt == 4:
                    raise
        return out + [c for c in active if c not in out]

    def list(self, filters: Mapping[str, Sequence[str]] | None = None) -> list[Volume]:
        flt = {k: list(v) for k, v in (filters or {}).items()}
        for k in flt:
            if k not in LIST_FILTERS:
                raise InvalidArgument(f"invalid filter '{k}'")
        dangling: bool | None = None
        if flt.get("dangling"):
            dangling = _parse_bool("dangling", flt["dangling"][0])
        with self._lock:
            vols = sorted(self._vols.values(), key=lambda v: v.name)
        out = []
        for v in vols:
            if flt.get("driver") and v.driver not in flt["driver"]:
                continue
            if flt.get("name") and not _name_match(v.name, flt["name"]):
                continue
            if flt.get("label") and not _labels_match(v.labels, flt["label"]):
                continue
            if dangling is not None and (not self.users(v.name)) != dangling:
                continue
            out.append(v)
        return out

    def usage(self, name: str) -> Usage:
        """``UsageData`` (size -1 for volumes with mount options: not local data, as dockerd)."""
        v = self.get(name)
        size = -1 if v.options else dir_size(v.mountpoint)
        return Usage(size, len(self.users(name)))

    def _delete(self, v: Volume) -> None:
        d = self._dir(v.name)
        data = str(d / DATA_DIR)
        if local.is_mountpoint(data):
            local.unmount(data)
        if local.is_mountpoint(data):  # never recurse into someone's mounted data
            raise Conflict(f"remove {v.name}: {data} is still mounted")
        # the record goes first: a crash mid-way leaves an unlisted folder, not a half volume
        (d / "volume.json").unlink(missing_ok=True)
        self._vols.pop(v.name, None)
        self._active.pop(v.name, None)
        shutil.rmtree(d, ignore_errors=True)

    def remove(self, name: str, force: bool = False) -> None:
        """Delete a volume and its data. ``force``: an unknown name is not an error (dockerd's
        PurgeOnError); a volume in use is refused either way."""
        with self._lock:
            v = self._vols.get(name)
            if v is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self._delete(v)

    def prune(self, filters: Mapping[str, Sequence[str]] | None = None) -> tuple[list[str], int]:
        """Remove unused local volumes without mount options: only anonymous ones unless the
        ``all`` filter is true (docker 23+). Returns (names removed, bytes reclaimed)."""
        flt = {k: list(v) for k, v in (filters or {}).items()}
        for k in flt:
            if k not in PRUNE_FILTERS:
                raise InvalidArgument(f"invalid filter '{k}'")
        all_ = flt.pop("all", [])
        if len(all_) > 1:
            raise InvalidArgument(f"invalid filter 'all={all_}': only one value is expected")
        labels = list(flt.get("label", []))
        if not (all_ and _parse_bool("all", all_[0])):
            labels.append(ANONYMOUS_LABEL)
        deleted: list[str] = []
        reclaimed = 0
        with self._lock:
            for v in sorted(self._vols.values(), key=lambda v: v.name):
                if v.options or not _labels_match(v.labels, labels):
                    continue
                if flt.get("label!") and any(_labels_match(v.labels, [e]) for e in flt["label!"]):
                    continue
                if self.users(v.name):
                    continue
                size = dir_size(v.mountpoint)
                try:
                    self._delete(v)
                except (Conflict, OSError) as e:
                    log.warning("prune: could not remove volume %s: %s", v.name, e)
                    continue
                deleted.append(v.name)
                reclaimed += size
        return deleted, reclaimed

    # ---- use by containers ---------------------------------------------------------------
    def _save_active(self, name: str) -> None:
        p = self._dir(name) / "active.json"
        refs = self._active.get(name)
        if refs:
            _write_json(p, refs)
        else:
            self._active.pop(name, None)
            p.unlink(missing_ok=True)

    def acquire(self, name: str, container_id: str) -> str:
        """Mount the volume for a container (the first user mounts type/device volumes) and
        return the host path to bind into it. Idempotent per container."""
        with self._lock:
            v = self.get(name)
            if container_id in self._active.get(name, []):
                return v.mountpoint
            if local.needs_mount(v.options) and not local.is_mountpoint(v.mountpoint):
                local.mount(v.options, v.mountpoint)
            refs = self._active.setdefault(name, [])
            refs.append(container_id)
            try:
                self._save_active(name)
            except BaseException:
                refs.remove(container_id)
                if not refs and local.needs_mount(v.options):
                    local.unmount(v.mountpoint)
                raise
            return v.mountpoint

    def release(self, name: str, container_id: str) -> None:
        """Drop a container's hold; the last one out unmounts. Unknown holds are ignored."""
        with self._lock:
            v = self._vols.get(name)
            refs = self._active.get(name, [])
            if v is None or container_id not in refs:
                return
            refs.remove(container_id)
            if not refs and local.needs_mount(v.options) and local.is_mountpoint(v.mountpoint):
                local.unmount(v.mountpoint)
            self._save_active(name)

    def reconcile(self, live_containers: Iterable[str]) -> list[str]:
        """Daemon start: forget holds of containers that are gone; unmount what nobody holds."""
        live = set(live_containers)
        done = []
        with self._lock:
            for name in list(self._active):
                for cid in [c for c in self._active[name] if c not in live]:
                    self.release(name, cid)
                    done.append(f"released {name} held by {cid}")
            for v in self._vols.values():
                if local.needs_mount(v.options) and not self._active.get(v.name) \
                        and local.is_mountpoint(v.mountpoint):
                    local.unmount(v.mountpoint)
                    done.append(f"unmounted {v.name}")
        return done

    # ---- the engine's container steps ----------------------------------------------------
    def prepare(self, plans: Sequence[MountPlan], container_id: str) -> list[MountPlan]:
        """Container create: make the volumes the plans name (anonymous ones get a name).
        On failure, the anonymous volumes made here are removed again."""
        out: list[MountPlan] = []
        with ExitStack() as undo:
            for p in plans:
                if p.type == TYPE_VOLUME:
                    if p.source:
                        existed = p.source in self._vols
                        v = self.create(p.source, p.driver or DEFAULT_DRIVER, p.driver_opts, p.labels)
                        if not existed:
                            undo.callback(self._discard, v.name)
                    else:
                        v = self.create("", p.driver or DEFAULT_DRIVER, p.driver_opts, p.labels)
                        undo.callback(self._discard, v.name)
                    p = replace(p, source=v.name, driver=v.driver)
                out.append(p)
            undo.pop_all()
        return out

    def _discard(self, name: str) -> None:
        with self._lock:
            v = self._vols.get(name)
            if v is not None and not self._active.get(name):
                self._delete(v)

    def mount_all(self, plans: Sequence[MountPlan], container_id: str,
                  rootfs: str | os.PathLike[str] | None = None) -> list[MountPlan]:
        """Container start: acquire each volume, copy the image's content (from ``rootfs``)
        into empty volumes that allow it, create missing ``-v`` host dirs; return the plans
        with ``host_path`` set. A failure releases what was acquired."""
        out: list[MountPlan] = []
        with ExitStack() as undo:
            for p in plans:
                if p.type == TYPE_VOLUME:
                    if not p.source:
                        raise InvalidArgument(f"mount {p.destination}: volume not prepared")
                    path = self.acquire(p.source, container_id)
                    undo.callback(self.release, p.source, container_id)
                    if p.subpath:
                        sub = copyup.resolve_in_root(path, p.subpath)
                        if not sub.exists():
                            raise InvalidArgument(f"cannot access path {sub}: no such file or directory")
                        path = str(sub)
                    elif p.copy_data and rootfs is not None:
                        copyup.copy_up(path, rootfs, p.destination)
                    p = replace(p, host_path=path)
                elif p.type == TYPE_BIND:
                    if not os.path.lexists(p.source):
                        if not p.create_source:
                            raise InvalidArgument(f'invalid mount config for type "bind": '
                                                  f"bind source path does not exist: {p.source}")
                        os.makedirs(p.source, 0o755, exist_ok=True)
                    p = replace(p, host_path=p.source)
                out.append(p)
            undo.pop_all()
        return out

    def unmount_all(self, plans: Sequence[MountPlan], container_id: str) -> None:
        for p in plans:
            if p.type == TYPE_VOLUME and p.source:
                self.release(p.source, container_id)

    def remove_anonymous(self, plans: Sequence[MountPlan]) -> list[str]:
        """``docker rm -v`` / ``run --rm``: remove the container's anonymous volumes that no
        one else uses (named volumes stay). Returns the names removed."""
        gone = []
        for p in plans:
            if p.type != TYPE_VOLUME or not p.source or p.origin == "volumes-from":
                continue
            with self._lock:
                v = self._vols.get(p.source)
                if v is None or not v.anonymous or self.users(v.name):
                    continue
                self._delete(v)
            gone.append(p.source)
        return gone
