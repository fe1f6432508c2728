"""Container records on disk and the OCI status state machine.

Layout (``root`` defaults to /run/dockyard-runtime, like runc's /run/runc)::

    <root>/                    mode 0700
      #seccomp/<sha256>.bpf    compiled seccomp programs, shared (see linux.seccomp)
      <id>/                    made by mkdir: its existence reserves the id
        state.json             the record below, replaced atomically (temp + os.replace)
        exec.fifo              the create/start barrier; exists from create until start

Record (``state.json``): the public OCI state fields (ociVersion, id, pid, bundle, rootfs,
created, owner, annotations) plus private ones: ``starttime`` (the init process's start time
in clock ticks, so a recycled pid is not mistaken for the container), ``cgroup``
(``linux.cgroups.Cgroup.to_dict()``), ``process`` (the config's process, the base for
``exec``), ``hooks``, ``namespaces`` (types the init created or joined), ``rootless``.

Status (computed, never stored): ``creating`` until the record has a pid; then ``stopped``
if the init process is gone (or a zombie), ``paused`` if its cgroup is frozen, ``created``
while exec.fifo exists, else ``running``. Allowed transitions:
creating → created → running ⇄ paused → stopped; created → stopped (kill).
"""

from __future__ import annotations

import os

from dockyard.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.runtime import fastjson

DEFAULT_ROOT = "/run/dockyard-runtime"
OCI_VERSION = "1.0.2-dev"
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid: str) -> None:
    """runc's rule: ``^[\\w+\\-.]+$`` and not ``.`` or ``..``."""
    if not cid or cid in (".", "..") or not set(cid) <= _ID_CHARS:
        raise InvalidArgument(f"invalid id format: {cid!r}")


def container_dir(root: str, cid: str) -> str:
    check_id(cid)
    return os.path.join(root, cid)


def reserve(root: str, cid: str) -> str:
    """Create ``<root>/<id>``; ``AlreadyExists`` if the id is taken."""
    d = container_dir(root, cid)
    os.makedirs(root, mode=0o700, exist_ok=True)
    try:
        os.mkdir(d, 0o711)
    except FileExistsError:
        raise AlreadyExists("container with given ID already exists") from None
    return d


def save(root: str, cid: str, rec: dict) -> None:
    d = container_dir(root, cid)
    tmp = f"{d}/.state.json.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, fastjson.dumps(rec).encode())
    finally:
        os.close(fd)
    os.replace(tmp, f"{d}/state.json")


def load(root: str, cid: str) -> dict:
    """The record; ``NotFound("container does not exist")`` if there is none."""
    d = container_dir(root, cid)
    try:
        with open(f"{d}/state.json", "rb") as f:
            return fastjson.loads(f.read())
    except FileNotFoundError:
        if os.path.isdir(d):
            return {"id": cid, "pid": 0, "_creating": True}
        raise NotFound("container does not exist") from None


def ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if set(n) <= _ID_CHARS and n not in (".", "..")
                  and os.path.isdir(os.path.join(root, n)))


def seccomp_cache_dir(root: str) -> str:
    """Compiled seccomp programs (``linux.seccomp``), kept across containers. The name is
    not a valid container id, so it never collides with one."""
    return os.path.join(root, "#seccomp")


def proc_starttime(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks, one-letter state) of ``pid`` from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


def init_alive(rec: dict) -> bool:
    pid = rec.get("pid") or 0
    if pid <= 0:
        return False
    st = proc_starttime(pid)
    if st is None or st[1] in ("Z", "X"):
        return False
    return st[0] == rec.get("starttime", st[0])


def status(root: str, rec: dict) -> str:
    if rec.get("_creating"):
        return "creating"
    if not init_alive(rec):
        return "stopped"
    cg = rec.get("cgroup")
    if cg:
        from dockyard.linux import cgroups

        if cgroups.is_frozen(cgroups.Cgroup.from_dict(cg)):
            return "paused"
    if os.path.exists(f"{root}/{rec['id']}/exec.fifo"):
        return "created"
    return "running"


def public(root: str, rec: dict, st: str | None = None) -> dict:
    """The OCI state document, as ``runc state`` prints it."""
    st = st or status(root, rec)
    out = {
        "ociVersion": rec.get("ociVersion", OCI_VERSION),
        "id": rec["id"],
        "pid": rec.get("pid", 0) if st not in ("stopped",) else 0,
        "status": st,
        "bundle": rec.get("bundle", ""),
        "rootfs": rec.get("rootfs", ""),
        "created": rec.get("created", ""),
        "owner": rec.get("owner", "") if st != "stopped" else "",
    }
    if rec.get("annotations"):
        out["annotations"] = rec["annotations"]
    return out


def now_rfc3339() -> str:
    """UTC time with nanoseconds, like Go's time.RFC3339Nano (without importing datetime)."""
    import time

    ns = time.time_ns()
    t = time.gmtime(ns // 1_000_000_000)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + (f".{frac}" if frac else "") + "Z"


def write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def remove_dir(d: str) -> None:
    try:
        for name in os.listdir(d):
            os.unlink(f"{d}/{name}")
        os.rmdir(d)
    except FileNotFoundError:
        pass
