"""Container config (Docker's Config + HostConfig) -> OCI runtime spec (``config.json``).

Pure except for reading the container's ``/etc/passwd`` and ``/etc/group`` (to resolve
``User``) and a seccomp profile file named by ``--security-opt seccomp=<file>``. Defaults are
Docker's: its capability set, masked and read-only paths, device cgroup rules, /dev/shm 64 MiB,
``/etc/{hostname,hosts,resolv.conf}`` bind-mounted from per-container files.

Network: ``netns`` is None for a new, empty network namespace (``--network none``), ``"host"``
for the host's, or a path to join (a network driver prepared it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.daemon import seccomp
from dockyard.errors import InvalidArgument

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def host_bounding_caps() -> list[str]:
    """ALL_CAPS (listed in kernel bit order) that this host lets a process hold: --privileged
    and --cap-add ALL can't ask for more (e.g. a sandbox without CAP_SYS_RESOURCE)."""
    try:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("CapBnd:"))
        mask = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError):
        return list(ALL_CAPS)
    return [c for bit, c in enumerate(ALL_CAPS) if mask >> bit & 1]


MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# Docker's default device cgroup rules: deny all, then the safe character devices.
DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},   # zero
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},   # null
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},   # urandom
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},   # random
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},   # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},   # console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},   # ptmx
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},   # full
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},             # pts
    {"allow": False, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # tun off by default
]

RLIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}


@dataclass(frozen=True)
class SpecInputs:
    cid: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    rootfs: Path  # mounted: /etc/passwd is read from it
    hostname_path: Path
    hosts_path: Path
    resolv_path: Path
    cgroups_path: str
    netns: str | None = None  # None: new empty netns; "host"; or a path to join
    init_path: str | None = None  # a static reaper bind-mounted for --init
    # (kind, "host" | namespace path) for pid/ipc namespaces not made new (--pid/--ipc
    # host|container:<x>): "host" stays in the runtime's, a path is joined
    join: tuple[tuple[str, str], ...] = ()
    # /dev/shm: None = a private tmpfs; "" = none (--ipc none); a path = bind-mounted (the
    # host's for --ipc host, a shareable container's own, or its donor's)
    shm: str | None = None


def command_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


def normalize_cap(name: str) -> str:
    name = name.strip().upper()
    if name == "ALL":
        return name
    return name if name.startswith("CAP_") else "CAP_" + name


def capabilities(host_config: dict[str, Any]) -> list[str]:
    if host_config.get("Privileged"):
        return host_bounding_caps()
    caps = list(DEFAULT_CAPS)
    adds = [normalize_cap(c) for c in host_config.get("CapAdd") or []]
    drops = [normalize_cap(c) for c in host_config.get("CapDrop") or []]
    for c in adds + drops:
        if c != "ALL" and c not in ALL_CAPS:
            raise InvalidArgument(f"unknown capability: {c!r}")
    if "ALL" in drops:
        caps = []
    else:
        caps = [c for c in caps if c not in drops]
    if "ALL" in adds:
        caps = [c for c in host_bounding_caps() if c not in drops]
    else:
        caps += [c for c in adds if c not in caps]
    return caps


def _read_db(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(rootfs: Path, user: str, group_add: list[str]) -> dict[str, Any]:
    """Docker's ``User`` (``name|uid[:group|gid]``) -> OCI ``process.user``; home for HOME."""
    name, _, group = (user or "").partition(":")
    passwd = _read_db(rootfs / "etc" / "passwd")
    groups = _read_db(rootfs / "etc" / "group")
    uid, gid, home, uname = 0, 0, "/", "root"
    if name:
        entry = next((p for p in passwd if len(p) >= 6 and (p[0] == name or p[2] == name)), None)
        if entry is not None:
            uid, gid, home, uname = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
        elif name.isdigit():
            uid, gid, home, uname = int(name), int(name) if not group else 0, "/", ""
            gid = 0 if not group else gid
        else:
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    elif passwd:
        root = next((p for p in passwd if len(p) >= 6 and p[2] == "0"), None)
        if root is not None:
            home = root[5] or "/"
    if group:
        g = next((e for e in groups if len(e) >= 3 and (e[0] == group or e[2] == group)), None)
        if g is not None:
            gid = int(g[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
    # dockerd lists the primary group among the supplementary ones too (``id`` in a container
    # prints ``groups=<gid>``; files owned by that group stay reachable after setgroups)
    extra: list[int] = [gid]
    if uname:
        for e in groups:
            if len(e) >= 4 and uname in e[3].split(",") and int(e[2]) != gid:
                extra.append(int(e[2]))
    for g_name in group_add:
        g = next((e for e in groups if len(e) >= 3 and (e[0] == g_name or e[2] == g_name)), None)
        if g is not None:
            extra.append(int(g[2]))
        elif g_name.isdigit():
            extra.append(int(g_name))
        else:
            raise InvalidArgument(f"unable to find group {g_name}: no matching entries in group file")
    return {"uid": uid, "gid": gid, "home": home, "additionalGids": sorted(set(extra))}


def merge_env(*layers: list[str] | None) -> list[str]:
    env: dict[str, str] = {}
    for layer in layers:
        for item in layer or []:
            k, sep, v = item.partition("=")
            if sep:
                env[k] = item
            else:
                env.pop(k, None)
    return list(env.values())


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", text.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size: {text!r}")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * mult)


def _seccomp(security_opt: list[str], privileged: bool, caps: list[str]) -> dict[str, Any] | None:
    profile: dict[str, Any] | None = None if privileged else seccomp.default_profile()
    for opt in security_opt:
        key, sep, val = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp":
            if val == "unconfined":
                profile = None
            elif val in ("builtin", ""):
                profile = seccomp.default_profile()
            else:
                try:
                    profile = json.loads(Path(val).read_text()) if not val.lstrip().startswith("{") \
                        else json.loads(val)
                except OSError as e:
                    raise InvalidArgument(f"opening seccomp profile ({val}) failed: {e.strerror}") from e
                except ValueError as e:
                    raise InvalidArgument(f"decoding seccomp profile failed: {e}") from e
    return None if profile is None else seccomp.to_oci(profile, caps)


def _no_new_privs(security_opt: list[str]) -> bool:
    for opt in security_opt:
        key, _, val = opt.partition("=" if "=" in opt else ":")
        if key == "no-new-privileges":
            return val in ("", "true", "1")
        if key not in ("seccomp", "label", "apparmor", "systempaths", "mask", "unmask"):
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")
    return False


def resources(hc: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": list(DEFAULT_DEVICE_RULES)}
    mem: dict[str, Any] = {}
    if hc.get("Memory"):
        mem["limit"] = int(hc["Memory"])
        swap = hc.get("MemorySwap") or 0
        if swap > 0:
            mem["swap"] = int(swap)
        elif swap == 0:
            mem["swap"] = int(hc["Memory"]) * 2
        else:
            mem["swap"] = -1
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness >= 0:
        mem["swappiness"] = int(swappiness)
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 1_000_000_000
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        res["cpu"] = cpu
    if hc.get("PidsLimit") and hc["PidsLimit"] > 0:
        res["pids"] = {"limit": int(hc["PidsLimit"])}
    if hc.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(hc["BlkioWeight"])}
    return res


def _devices(hc: dict[str, Any], res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for dev in hc.get("Devices") or []:
        host = dev.get("PathOnHost", "")
        inside = dev.get("PathInContainer") or host
        perms = dev.get("CgroupPermissions") or "rwm"
        try:
            st = os.stat(host)
        except OSError as e:
            raise InvalidArgument(f"error gathering device information while adding custom device "
                                  f"{host!r}: {e.strerror}") from e
        import stat as statmod
        if statmod.S_ISCHR(st.st_mode):
            kind = "c"
        elif statmod.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            raise InvalidArgument(f"{host!r} is not a device node")
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        out.append({"path": inside, "type": kind, "major": major, "minor": minor,
                    "fileMode": statmod.S_IMODE(st.st_mode), "uid": 0, "gid": 0})
        res["devices"].append({"allow": True, "type": kind, "major": major, "minor": minor,
                               "access": perms})
    return out


def host_devices() -> list[dict[str, Any]]:
    """Every device node of the host's /dev (--privileged gets them all, as with Docker)."""
    import stat as statmod
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if statmod.S_ISCHR(st.st_mode):
                kind = "c"
            elif statmod.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            if path in ("/dev/console", "/dev/ptmx", "/dev/tty"):
                continue  # the runtime provides these per container
            out.append({"path": path, "type": kind, "major": os.major(st.st_rdev),
                        "minor": os.minor(st.st_rdev), "fileMode": statmod.S_IMODE(st.st_mode),
                        "uid": st.st_uid, "gid": st.st_gid})
    return out


def build_spec(inp: SpecInputs) -> dict[str, Any]:
    cfg, hc = inp.config, inp.host_config
    args = command_of(cfg)
    if not args:
        raise InvalidArgument("no command specified")
    if inp.init_path:
        args = ["/sbin/docker-init", "--"] + args
    privileged = bool(hc.get("Privileged"))
    caps = capabilities(hc)
    security_opt = list(hc.get("SecurityOpt") or [])
    user = resolve_user(inp.rootfs, cfg.get("User") or "", list(hc.get("GroupAdd") or []))
    home = user.pop("home")
    env = merge_env([DEFAULT_PATH, f"HOSTNAME={cfg.get('Hostname') or inp.cid[:12]}"],
                    cfg.get("Env"))
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    if cfg.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    rlimits: list[dict[str, Any]] = []  # inherited from the daemon unless --ulimit says otherwise
    for ul in hc.get("Ulimits") or []:
        name = RLIMITS.get(str(ul.get("Name", "")).lower())
        if name is None:
            raise InvalidArgument(f"invalid ulimit type: {ul.get('Name')}")
        rlimits = [r for r in rlimits if r["type"] != name]
        rlimits.append({"type": name, "hard": int(ul.get("Hard", 0)), "soft": int(ul.get("Soft", 0))})
    process: dict[str, Any] = {
        "terminal": bool(cfg.get("Tty")),
        "user": user,
        "args": args,
        "env": env,
        "cwd": cfg.get("WorkingDir") or "/",
        "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
        "rlimits": rlimits,
        "noNewPrivileges": _no_new_privs(security_opt),
    }
    if hc.get("OomScoreAdj"):
        process["oomScoreAdj"] = int(hc["OomScoreAdj"])
    if hc.get("ConsoleSize") and any(hc["ConsoleSize"]):
        h, w = hc["ConsoleSize"]
        process["consoleSize"] = {"height": int(h), "width": int(w)}

    shm = int(hc.get("ShmSize") or 64 << 20)
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if inp.shm is None:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]})
    elif inp.shm:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": inp.shm,
                       "options": ["rbind", "rprivate"]})
    for dest, src in (("/etc/resolv.conf", inp.resolv_path), ("/etc/hostname", inp.hostname_path),
                      ("/etc/hosts", inp.hosts_path)):
        mounts.append({"destination": dest, "type": "bind", "source": str(src),
                       "options": ["rbind", "rprivate"]})
    if inp.init_path:
        mounts.append({"destination": "/sbin/docker-init", "type": "bind", "source": inp.init_path,
                       "options": ["bind", "ro"]})
    for dest, opts in (hc.get("Tmpfs") or {}).items():
        options = ["nosuid", "nodev", "noexec"] + [o for o in opts.split(",") if o]
        mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
    for m in hc.get("ExtraMounts") or []:  # prepared by the volumes step
        mounts.append(m)

    joins = dict(inp.join)
    namespaces: list[dict[str, str]] = []
    for kind in ("pid", "ipc"):
        how = joins.get(kind)
        if how is None:
            namespaces.append({"type": kind})
        elif how != "host":
            namespaces.append({"type": kind, "path": how})
    namespaces += [{"type": "uts"}, {"type": "mount"}]
    if inp.netns is None:
        namespaces.append({"type": "network"})
    elif inp.netns != "host":
        namespaces.append({"type": "network", "path": inp.netns})
    if (hc.get("CgroupnsMode") or "private") == "private":
        namespaces.append({"type": "cgroup"})

    res = resources(hc)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": inp.cgroups_path,
        "resources": res,
        "devices": _devices(hc, res),
        "sysctl": dict(hc.get("Sysctls") or {}),
    }
    if privileged:
        res["devices"] = [{"allow": True, "access": "rwm"}]
        have = {d["path"] for d in linux["devices"]}
        linux["devices"] += [d for d in host_devices() if d["path"] not in have]
    else:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        sc = _seccomp(security_opt, privileged, caps)
        if sc is not None:
            linux["seccomp"] = sc
    hostname = cfg.get("Hostname") or inp.cid[:12]
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": mounts,
        "linux": linux,
        "annotations": {"org.dockyard.container.id": inp.cid},
    }
    if inp.netns != "host" or hc.get("UTSMode") != "host":
        spec["hostname"] = hostname
        if cfg.get("Domainname"):
            spec["domainname"] = cfg["Domainname"]
    return spec


def exec_process(container_spec: dict[str, Any], rootfs: Path, exec_cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``process`` for ``runtime exec``: the container's, with the exec's overrides."""
    base = container_spec["process"]
    args = list(exec_cfg.get("Cmd") or [])
    if not args:
        raise InvalidArgument("No exec command specified")
    proc = json.loads(json.dumps(base))
    proc["args"] = args
    proc["terminal"] = bool(exec_cfg.get("Tty"))
    proc.pop("consoleSize", None)
    size = exec_cfg.get("ConsoleSize")
    if proc["terminal"] and isinstance(size, list) and len(size) == 2 and all(size):
        # docker >= 23 sends the terminal's size with the exec: the shell's first prompt is laid
        # out with it instead of 0x0 (the CLI's resize may only arrive after the first read)
        proc["consoleSize"] = {"height": int(size[0]), "width": int(size[1])}
    if exec_cfg.get("User"):
        user = resolve_user(rootfs, exec_cfg["User"], [])
        user.pop("home")
        proc["user"] = user
    if exec_cfg.get("Env"):
        proc["env"] = merge_env(proc["env"], exec_cfg["Env"])
    if exec_cfg.get("WorkingDir"):
        proc["cwd"] = exec_cfg["WorkingDir"]
    if exec_cfg.get("Privileged"):
        proc["capabilities"] = {k: host_bounding_caps() for k in ("bounding", "effective", "permitted")}
    if proc["terminal"] and not any(e.startswith("TERM=") for e in proc["env"]):
        proc["env"].append("TERM=xterm")
    return proc
