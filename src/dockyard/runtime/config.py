"""Load and check a bundle's ``config.json`` (OCI runtime spec, Linux).

``load(bundle)`` returns the parsed document (plain dicts: the runtime passes parts of it to
``linux/`` as they are) after checking every field the runtime uses; a bad field raises
``InvalidArgument`` naming it (``config.json: process.args: must be a non-empty list of
strings``). Nothing is created on disk here. Host features the config asks for and the
kernel lacks raise ``Unavailable``.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument, NotFound, Unavailable
from dockyard.runtime import fastjson

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAMESPACES = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
    "user": "user", "cgroup": "cgroup", "time": "time",
}
RLIMITS = (
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
)
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")


def _bad(field: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"config.json: {field}: {why}")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _strlist(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def read(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise NotFound(f"JSON specification file {path} not found") from None
    except OSError as e:
        raise InvalidArgument(f"config.json: cannot read {path}: {e.strerror}") from None
    try:
        doc = fastjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"config.json: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("config.json: the document must be a JSON object")
    return doc


def load(bundle: str) -> dict:
    """Read and check ``bundle/config.json``; resolve ``root.path`` to ``cfg["_rootfs"]``."""
    cfg = read(bundle)
    if not isinstance(cfg.get("ociVersion"), str):
        raise _bad("ociVersion", "required (a string)")
    root = cfg.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str) or not root["path"]:
        raise _bad("root.path", "required (a string)")
    rootfs = os.path.join(bundle, root["path"])
    if not os.path.isdir(rootfs):
        raise _bad("root.path", f"{rootfs} is not a directory")
    cfg["_rootfs"] = os.path.realpath(rootfs)
    if "readonly" in root and not isinstance(root["readonly"], bool):
        raise _bad("root.readonly", "must be a boolean")
    proc = cfg.get("process")
    if not isinstance(proc, dict):
        raise _bad("process", "required (an object)")
    check_process(proc, "process")
    if "hostname" in cfg and not isinstance(cfg["hostname"], str):
        raise _bad("hostname", "must be a string")
    mounts = cfg.get("mounts") or []
    if not isinstance(mounts, list):
        raise _bad("mounts", "must be a list")
    for i, m in enumerate(mounts):
        if not isinstance(m, dict):
            raise _bad(f"mounts[{i}]", "must be an object")
        if not isinstance(m.get("destination"), str) or not m["destination"]:
            raise _bad(f"mounts[{i}].destination", "required (a string)")
        if "options" in m and not _strlist(m["options"]):
            raise _bad(f"mounts[{i}].options", "must be a list of strings")
        for k in ("type", "source"):
            if k in m and not isinstance(m[k], str):
                raise _bad(f"mounts[{i}].{k}", "must be a string")
    hooks = cfg.get("hooks") or {}
    if not isinstance(hooks, dict):
        raise _bad("hooks", "must be an object")
    for name, lst in hooks.items():
        if name not in HOOKS:
            continue
        if not isinstance(lst, list):
            raise _bad(f"hooks.{name}", "must be a list")
        for i, h in enumerate(lst):
            if not isinstance(h, dict) or not isinstance(h.get("path"), str) \
                    or not h["path"].startswith("/"):
                raise _bad(f"hooks.{name}[{i}].path", "required (an absolute path)")
            if "args" in h and not _strlist(h["args"]):
                raise _bad(f"hooks.{name}[{i}].args", "must be a list of strings")
            if "env" in h and not _strlist(h["env"]):
                raise _bad(f"hooks.{name}[{i}].env", "must be a list of strings")
            if "timeout" in h and (not _int(h["timeout"]) or h["timeout"] <= 0):
                raise _bad(f"hooks.{name}[{i}].timeout", "must be a positive integer")
    linux = cfg.get("linux") or {}
    if not isinstance(linux, dict):
        raise _bad("linux", "must be an object")
    cfg["linux"] = linux
    _check_linux(linux, bool(cfg.get("hostname") or cfg.get("domainname")))
    return cfg


def check_process(proc: dict, field: str) -> None:
    """Check an OCI ``process`` object (also used for ``exec --process``)."""
    args = proc.get("args")
    if not _strlist(args) or not args or not args[0]:
        raise _bad(f"{field}.args", "must be a non-empty list of strings")
    cwd = proc.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise _bad(f"{field}.cwd", "must be an absolute path")
    env = proc.get("env") or []
    if not _strlist(env):
        raise _bad(f"{field}.env", "must be a list of strings")
    for i, e in enumerate(env):
        if "=" not in e:
            raise _bad(f"{field}.env[{i}]", f"{e!r} is not KEY=VALUE")
    if "terminal" in proc and not isinstance(proc["terminal"], bool):
        raise _bad(f"{field}.terminal", "must be a boolean")
    user = proc.get("user") or {}
    if not isinstance(user, dict):
        raise _bad(f"{field}.user", "must be an object")
    for k in ("uid", "gid", "umask"):
        if k in user and (not _int(user[k]) or user[k] < 0):
            raise _bad(f"{field}.user.{k}", "must be a non-negative integer")
    ag = user.get("additionalGids") or []
    if not isinstance(ag, list) or not all(_int(g) and g >= 0 for g in ag):
        raise _bad(f"{field}.user.additionalGids", "must be a list of non-negative integers")
    caps = proc.get("capabilities")
    if caps is not None:
        from dockyard.linux import caps as capmod

        if not isinstance(caps, dict):
            raise _bad(f"{field}.capabilities", "must be an object")
        for k in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            v = caps.get(k)
            if v is not None and not _strlist(v):
                raise _bad(f"{field}.capabilities.{k}", "must be a list of strings")
            try:
                capmod.mask(v, f"{field}.capabilities.{k}")
            except ValueError as e:
                raise InvalidArgument(f"config.json: {e}") from None
    rl = proc.get("rlimits") or []
    if not isinstance(rl, list):
        raise _bad(f"{field}.rlimits", "must be a list")
    seen: set[str] = set()
    for i, r in enumerate(rl):
        if not isinstance(r, dict) or r.get("type") not in RLIMITS:
            raise _bad(f"{field}.rlimits[{i}].type", f"unknown rlimit {r.get('type') if isinstance(r, dict) else r!r}")
        if r["type"] in seen:
            raise _bad(f"{field}.rlimits[{i}].type", f"duplicate {r['type']}")
        seen.add(r["type"])
        for k in ("soft", "hard"):
            if not _int(r.get(k)) or r[k] < 0:
                raise _bad(f"{field}.rlimits[{i}].{k}", "required (a non-negative integer)")
    if "noNewPrivileges" in proc and not isinstance(proc["noNewPrivileges"], bool):
        raise _bad(f"{field}.noNewPrivileges", "must be a boolean")
    if "oomScoreAdj" in proc and (not _int(proc["oomScoreAdj"])
                                  or not -1000 <= proc["oomScoreAdj"] <= 1000):
        raise _bad(f"{field}.oomScoreAdj", "must be an integer in [-1000, 1000]")


def _check_linux(linux: dict, names_host: bool = False) -> None:
    nss = linux.get("namespaces") or []
    if not isinstance(nss, list):
        raise _bad("linux.namespaces", "must be a list")
    seen: set[str] = set()
    for i, ns in enumerate(nss):
        if not isinstance(ns, dict) or ns.get("type") not in NAMESPACES:
            t = ns.get("type") if isinstance(ns, dict) else ns
            raise _bad(f"linux.namespaces[{i}].type", f"unknown namespace type {t!r}")
        t = ns["type"]
        if t in seen:
            raise _bad(f"linux.namespaces[{i}].type", f"duplicate namespace {t!r}")
        seen.add(t)
        if not os.path.exists(f"/proc/self/ns/{NAMESPACES[t]}"):
            raise Unavailable(f"config.json: linux.namespaces[{i}]: this kernel has no {t} namespaces")
        path = ns.get("path")
        if path is not None:
            if not isinstance(path, str) or not path.startswith("/"):
                raise _bad(f"linux.namespaces[{i}].path", "must be an absolute path")
            if not os.path.exists(path):
                raise _bad(f"linux.namespaces[{i}].path", f"{path} does not exist")
    if names_host and "uts" not in seen:
        raise _bad("hostname", "unable to set hostname without a private UTS namespace")
    newuser = any(ns["type"] == "user" and not ns.get("path") for ns in nss)
    for key in ("uidMappings", "gidMappings"):
        maps = linux.get(key) or []
        if not isinstance(maps, list):
            raise _bad(f"linux.{key}", "must be a list")
        for i, m in enumerate(maps):
            for k in ("containerID", "hostID", "size"):
                if not isinstance(m, dict) or not _int(m.get(k)) or m[k] < 0:
                    raise _bad(f"linux.{key}[{i}].{k}", "required (a non-negative integer)")
        if newuser and not maps:
            raise _bad(f"linux.{key}", "required with a new user namespace")
        if maps and "user" not in seen:
            raise _bad(f"linux.{key}", "user namespace mappings given without a user namespace")
    for key in ("maskedPaths", "readonlyPaths"):
        if key in linux and not _strlist(linux[key]):
            raise _bad(f"linux.{key}", "must be a list of strings")
    sysctl = linux.get("sysctl") or {}
    if not isinstance(sysctl, dict) or not all(isinstance(v, str) for v in sysctl.values()):
        raise _bad("linux.sysctl", "must be an object of strings")
    for k in sysctl:
        if "/" in k or ".." in k:
            raise _bad(f"linux.sysctl.{k}", "invalid name")
    cp = linux.get("cgroupsPath")
    if cp is not None and (not isinstance(cp, str) or ".." in cp.split("/")):
        raise _bad("linux.cgroupsPath", "must be a path without '..'")
    res = linux.get("resources") or {}
    if not isinstance(res, dict):
        raise _bad("linux.resources", "must be an object")
    devs = linux.get("devices") or []
    if not isinstance(devs, list) or not all(isinstance(d, dict) for d in devs):
        raise _bad("linux.devices", "must be a list of objects")
    prop = linux.get("rootfsPropagation")
    if prop is not None and prop not in ("private", "rprivate", "shared", "rshared", "slave",
                                         "rslave", "unbindable", "runbindable"):
        raise _bad("linux.rootfsPropagation", f"unknown propagation {prop!r}")
