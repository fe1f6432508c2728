"""Container verbs: run create start stop restart kill rm wait ps logs exec attach inspect
pause unpause rename port top update diff export commit cp stats prune.

Output formats and exit codes follow docker 28's CLI (compared in tests/integration).
"""

from __future__ import annotations

import sys

from dockyard.cli.common import (
    Globals,
    UsageError,
    daemon_error,
    each,
    err,
    filters,
    out,
    parse_env_file,
    parse_iso,
    parse_size,
    short_id,
    since,
)
from dockyard.cli.flags import parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def need(args: list[str], verb: str, at_least: int = 1, exactly: int | None = None) -> None:
    if exactly is not None and len(args) != exactly:
        raise UsageError(f"'dockyard {verb}' requires {exactly} argument{'s' * (exactly != 1)}")
    if len(args) < at_least:
        raise UsageError(f"'dockyard {verb}' requires at least {at_least} argument{'s' * (at_least != 1)}")


def run_error(verb: str, e: BaseException) -> int:
    """docker's layout for an engine error in run/create: exit 125."""
    err(f"dockyard: Error response from daemon: {e}\n\nRun 'dockyard {verb} --help' for more information")
    return 125


def help_requested(o: dict[str, Any]) -> None:
    if o["help"]:
        from dockyard.cli.main import Help
        raise Help()


# run / create ---------------------------------------------------------------------------------------
RUN_SPEC = ("d|detach i|interactive t|tty rm name= e|env* env-file* l|label* label-file* w|workdir= u|user= "
            "entrypoint= h|hostname= network= net= network-alias* privileged read-only cap-add* cap-drop* "
            "restart= security-opt* init m|memory= memory-swap= memory-reservation= cpus= cpu-shares# "
            "c|cpu-shares# cpuset-cpus= pids-limit# tmpfs* p|publish* P|publish-all v|volume* expose* "
            "add-host* dns* dns-search* dns-option* detach-keys= sig-proxy= stop-signal= stop-timeout# "
            "platform= pull= q|quiet cidfile= ip= ip6= mac-address= shm-size= ulimit* device* group-add* "
            "log-driver= log-opt* a|attach* domainname= volumes-from* oom-kill-disable oom-score-adj# "
            "health-cmd= health-interval= health-retries# health-timeout= health-start-period= no-healthcheck "
            "ipc= pid= uts= userns= cgroupns= runtime= isolation= link* mount* sysctl* storage-opt* "
            "gpus= kernel-memory= blkio-weight# cgroup-parent= annotation*")


def _kv(items: list[str]) -> dict[str, str]:
    return dict(x.split("=", 1) if "=" in x else (x, "") for x in items)


def _duration_ns(text: str | None) -> int:
    if not text:
        return 0
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        u = text[i:i + 2] if text[i:i + 2] in units else c
        if u not in units or not num:
            raise UsageError(f'invalid duration "{text}"')
        total += float(num) * units[u]
        num = ""
        i += len(u)
    if num:
        raise UsageError(f'invalid duration "{text}": missing unit')
    return int(total)


def port_bindings(specs: list[str]) -> dict[str, list[dict[str, str]]]:
    """``[ip:][hostPort:]containerPort[/proto]`` (ranges too) -> the Engine API's PortBindings."""
    result: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        body, _, proto = spec.partition("/")
        if body.startswith("["):  # [::1]:80:80
            ip, _, body = body[1:].partition("]:")
            parts = ["", *body.split(":")]
        else:
            parts = body.rsplit(":", 2)
        if len(parts) == 3:
            ip, host, cport = parts
        elif len(parts) == 2:
            ip, (host, cport) = "", parts
        else:
            ip, host, cport = "", "", parts[0]
        cports = cport.split("-")
        hosts = host.split("-") if host else []
        if not all(p.isdigit() for p in cports) or not all(p.isdigit() for p in hosts):
            raise UsageError(f"invalid port specification: \"{spec}\"")
        lo, hi = int(cports[0]), int(cports[-1])
        for n, p in enumerate(range(lo, hi + 1)):
            hp = ""
            if hosts:
                hp = str(int(hosts[0]) + n) if len(hosts) == 2 or hi > lo else hosts[0]
                if len(hosts) == 2 and hi == lo:
                    hp = f"{hosts[0]}-{hosts[1]}"
            result.setdefault(f"{p}/{proto or 'tcp'}", []).append({"HostIp": ip, "HostPort": hp})
    return result


def container_config(image: str, command: list[str], o: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /containers/create`` body docker's CLI sends for these flags."""
    env: list[str] = []
    for f in o["env_file"]:
        env += parse_env_file(f)
    import os
    for e in o["env"]:
        if "=" not in e:  # -e NAME passes our value through, as docker does
            if e in os.environ:
                env.append(f"{e}={os.environ[e]}")
            continue
        env.append(e)
    labels: dict[str, str] = {}
    for f in o["label_file"]:
        labels.update(_kv(parse_env_file(f)))
    labels.update(_kv(o["label"]))
    restart = o["restart"] or "no"
    rname, _, count = restart.partition(":")
    if rname not in ("no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy format: {restart}")
    if o["rm"] and rname != "no":
        raise UsageError("Conflicting options: --restart and --rm")
    pb = port_bindings(o["publish"])
    exposed = {k: {} for k in pb}
    for e in o["expose"]:
        p, _, proto = e.partition("/")
        exposed[f"{p}/{proto or 'tcp'}"] = {}
    tmpfs = {t.split(":", 1)[0]: (t.split(":", 1)[1] if ":" in t else "") for t in o["tmpfs"]}
    ulimits = []
    for u in o["ulimit"]:
        name, _, lim = u.partition("=")
        soft, _, hard = lim.partition(":")
        ulimits.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
    devices = []
    for d in o["device"]:
        parts = d.split(":")
        devices.append({"PathOnHost": parts[0], "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
                        "CgroupPermissions": parts[2] if len(parts) > 2 else "rwm"})
    mounts = []
    for m in o["mount"]:
        kv = _kv(m.split(","))
        mt: dict[str, Any] = {"Type": kv.get("type", "volume"),
                              "Source": kv.get("source", kv.get("src", "")),
                              "Target": kv.get("target", kv.get("destination", kv.get("dst", "")))}
        if "readonly" in kv or "ro" in kv:
            mt["ReadOnly"] = kv.get("readonly", kv.get("ro", "")) in ("", "1", "true")
        mounts.append(mt)
    network = o["network"] or o["net"] or "default"
    hc: dict[str, Any] = {
        "AutoRemove": o["rm"], "NetworkMode": network, "Privileged": o["privileged"],
        "ReadonlyRootfs": o["read_only"], "CapAdd": o["cap_add"] or None, "CapDrop": o["cap_drop"] or None,
        "RestartPolicy": {"Name": rname, "MaximumRetryCount": int(count or 0)},
        "SecurityOpt": o["security_opt"] or None, "Init": True if o["init"] else None,
        "Memory": parse_size(o["memory"]) if o["memory"] else 0,
        "MemorySwap": (-1 if o["memory_swap"] == "-1" else parse_size(o["memory_swap"])) if o["memory_swap"] else 0,
        "MemoryReservation": parse_size(o["memory_reservation"]) if o["memory_reservation"] else 0,
        "NanoCpus": int(float(o["cpus"]) * 1e9) if o["cpus"] else 0,
        "CpuShares": o["cpu_shares"] or 0, "CpusetCpus": o["cpuset_cpus"] or "",
        "PidsLimit": o["pids_limit"] or None,
        "Tmpfs": tmpfs or None, "Binds": o["volume"] or None, "Mounts": mounts or None,
        "PortBindings": pb or None, "PublishAllPorts": o["publish_all"],
        "ExtraHosts": o["add_host"] or None, "Dns": o["dns"] or None, "DnsSearch": o["dns_search"] or None,
        "DnsOptions": o["dns_option"] or None,
        "ShmSize": parse_size(o["shm_size"]) if o["shm_size"] else 0,
        "Ulimits": ulimits or None, "Devices": devices or None, "GroupAdd": o["group_add"] or None,
        "LogConfig": {"Type": o["log_driver"] or "", "Config": _kv(o["log_opt"])},
        "VolumesFrom": o["volumes_from"] or None, "OomKillDisable": o["oom_kill_disable"] or None,
        "OomScoreAdj": o["oom_score_adj"] or 0, "IpcMode": o["ipc"] or "", "PidMode": o["pid"] or "",
        "UTSMode": o["uts"] or "", "UsernsMode": o["userns"] or "", "CgroupnsMode": o["cgroupns"] or "",
        "Runtime": o["runtime"] or "", "Links": o["link"] or None, "Sysctls": _kv(o["sysctl"]) or None,
        "CgroupParent": o["cgroup_parent"] or "", "Annotations": _kv(o["annotation"]) or None,
    }
    attach = {a.lower() for a in o["attach"]}
    detach = o["detach"]
    cfg: dict[str, Any] = {
        "Image": image, "Cmd": command or None, "Env": env or None, "Tty": o["tty"],
        "OpenStdin": o["interactive"], "StdinOnce": o["interactive"] and not detach,
        "AttachStdin": o["interactive"] and not detach or "stdin" in attach,
        "AttachStdout": not detach and (not attach or "stdout" in attach),
        "AttachStderr": not detach and (not attach or "stderr" in attach),
        "WorkingDir": o["workdir"] or "", "User": o["user"] or "", "Hostname": o["hostname"] or "",
        "Domainname": o["domainname"] or "", "ExposedPorts": exposed or None,
        "Entrypoint": ([o["entrypoint"]] if o["entrypoint"] else []) if o["entrypoint"] is not None else None,
        "Labels": labels, "StopSignal": o["stop_signal"] or None, "StopTimeout": o["stop_timeout"],
        "HostConfig": hc,
    }
    if o["health_cmd"] or o["no_healthcheck"]:
        cfg["Healthcheck"] = {"Test": ["NONE"]} if o["no_healthcheck"] else {
            "Test": ["CMD-SHELL", o["health_cmd"]], "Interval": _duration_ns(o["health_interval"]),
            "Timeout": _duration_ns(o["health_timeout"]), "Retries": o["health_retries"] or 0,
            "StartPeriod": _duration_ns(o["health_start_period"])}
    if o["mac_address"]:
        cfg["MacAddress"] = o["mac_address"]
    if network not in ("default", "bridge", "host", "none") and (o["network_alias"] or o["ip"] or o["ip6"]):
        ipam = {k: v for k, v in (("IPv4Address", o["ip"]), ("IPv6Address", o["ip6"])) if v}
        cfg["NetworkingConfig"] = {"EndpointsConfig": {network: {
            "Aliases": o["network_alias"] or None, "IPAMConfig": ipam or None}}}
    return cfg


def _create(g: Globals, o: dict[str, Any], args: list[str]) -> str:
    """Create, pulling the image first when it is missing (docker's --pull=missing)."""
    from dockyard import errors
    image, command = args[0], args[1:]
    cfg = container_config(image, command, o)
    query = {"name": o["name"], "platform": o["platform"]}
    pull = o["pull"] or "missing"
    if pull not in ("missing", "always", "never"):
        raise UsageError(f'invalid pull option: \'{pull}\': must be one of "always", "missing" or "never"')
    if pull == "always":
        _pull(g, image, o["quiet"])
    try:
        cid = g.client.json("POST", "/containers/create", query, cfg)["Id"]
    except errors.NotFound:
        # a 404 from create is a missing image, or a missing network/volume source: pull only
        # when the image really is absent, else report the daemon's own message
        if pull == "never" or _image_exists(g, image):
            raise
        err(f"Unable to find image '{_full_ref(image)}' locally")
        _pull(g, image, o["quiet"])
        cid = g.client.json("POST", "/containers/create", query, cfg)["Id"]
    if o["cidfile"]:
        with open(o["cidfile"], "x") as f:
            f.write(cid)
    return cid


def _image_exists(g: Globals, image: str) -> bool:
    from dockyard import errors
    try:
        g.get_json(f"/images/{image}/json")
        return True
    except errors.NotFound:
        return False


def _full_ref(image: str) -> str:
    name = image.split("@")[0]
    return image if ":" in name.rsplit("/", 1)[-1] or "@" in image else image + ":latest"


def _pull(g: Globals, image: str, quiet: bool) -> None:
    from dockyard.cli.images import pull_image
    rc = pull_image(g, image, quiet=quiet, stream=sys.stderr, echo_tag=False)
    if rc:
        raise _Exit(125)


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def run(g: Globals, argv: list[str]) -> int:
    from dockyard import errors
    o, args = parse(argv, RUN_SPEC, interspersed=False)
    help_requested(o)
    need(args, "run")
    if o["tty"] and o["interactive"] and not o["detach"] and not sys.stdin.isatty():
        raise UsageError("the input device is not a TTY")
    if o["detach"] and o["attach"]:
        raise UsageError("Conflicting options: -a and -d")
    try:
        cid = _create(g, o, args)
    except _Exit as e:
        return e.code
    except (errors.DockyardError, OSError) as e:
        return run_error("run", e)
    c = g.client
    if o["detach"]:
        try:
            c.request("POST", f"/containers/{cid}/start").read()
        except errors.DockyardError as e:
            return run_error("run", e)
        out(cid)
        return 0
    from dockyard.cli.streams import attach_and_stream
    return attach_and_stream(g, cid, tty=o["tty"], stdin=o["interactive"], start=True,
                             wait_condition="removed" if o["rm"] else "next-exit",
                             detach_keys=o["detach_keys"], sig_proxy=o["sig_proxy"] != "false")


def create(g: Globals, argv: list[str]) -> int:
    from dockyard import errors
    o, args = parse(argv, RUN_SPEC, interspersed=False)
    help_requested(o)
    need(args, "create")
    try:
        out(_create(g, o, args))
    except _Exit as e:
        return e.code
    except (errors.DockyardError, OSError) as e:
        return run_error("create", e)
    return 0


# lifecycle ------------------------------------------------------------------------------------------
def start(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|attach i|interactive detach-keys=")
    help_requested(o)
    need(args, "start")
    if o["attach"] or o["interactive"]:
        if len(args) > 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        from dockyard.cli.streams import attach_and_stream
        tty = bool(g.client.json("GET", f"/containers/{args[0]}/json")["Config"].get("Tty"))
        return attach_and_stream(g, args[0], tty=tty, stdin=o["interactive"], start=True,
                                 wait_condition="next-exit", detach_keys=o["detach_keys"], sig_proxy=True)
    return each(g, args, lambda c, n: c.request("POST", f"/containers/{n}/start").read())


def stop(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "t|time# timeout# s|signal=")
    help_requested(o)
    need(args, "stop")
    t = o["time"] if o["time"] is not None else o["timeout"]
    return each(g, args, lambda c, n: c.request("POST", f"/containers/{n}/stop",
                                                {"t": t, "signal": o["signal"]}).read())


def restart(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "t|time# timeout# s|signal=")
    help_requested(o)
    need(args, "restart")
    t = o["time"] if o["time"] is not None else o["timeout"]
    return each(g, args, lambda c, n: c.request("POST", f"/containers/{n}/restart",
                                                {"t": t, "signal": o["signal"]}).read())


def kill(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "s|signal=")
    help_requested(o)
    need(args, "kill")
    return each(g, args, lambda c, n: c.request("POST", f"/containers/{n}/kill", {"signal": o["signal"]}).read())


def pause(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "")
    help_requested(o)
    need(args, "pause")
    return each(g, args, lambda c, n: c.request("POST", f"/containers/{n}/pause").read())


def unpause(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "")
    help_requested(o)
    need(args, "unpause")
    return each(g, args, lambda c, n: c.request("POST", f"/containers/{n}/unpause").read())


def rm(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "f|force v|volumes l|link")
    help_requested(o)
    need(args, "rm")
    return each(g, args, lambda c, n: c.request("DELETE", f"/containers/{n}",
                                                {"force": o["force"], "v": o["volumes"], "link": o["link"]}).read())


def rename(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "")
    help_requested(o)
    need(args, "rename", exactly=2)
    g.client.request("POST", f"/containers/{args[0]}/rename", {"name": args[1]}).read()
    return 0


def wait(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "")
    help_requested(o)
    need(args, "wait")

    def one(c: Any, n: str) -> None:
        out(str(c.json("POST", f"/containers/{n}/wait")["StatusCode"]))
    return each(g, args, one, echo=False)


def update(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "m|memory= memory-swap= memory-reservation= cpus= c|cpu-shares# cpuset-cpus= "
                          "cpuset-mems= pids-limit# restart= blkio-weight# cpu-period# cpu-quota# kernel-memory=")
    help_requested(o)
    need(args, "update")
    body: dict[str, Any] = {}
    if o["memory"]:
        body["Memory"] = parse_size(o["memory"])
    if o["memory_swap"]:
        body["MemorySwap"] = -1 if o["memory_swap"] == "-1" else parse_size(o["memory_swap"])
    if o["memory_reservation"]:
        body["MemoryReservation"] = parse_size(o["memory_reservation"])
    if o["cpus"]:
        body["NanoCpus"] = int(float(o["cpus"]) * 1e9)
    for flag, key in (("cpu_shares", "CpuShares"), ("pids_limit", "PidsLimit"), ("blkio_weight", "BlkioWeight"),
                      ("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota")):
        if o[flag] is not None:
            body[key] = o[flag]
    for flag, key in (("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
        if o[flag]:
            body[key] = o[flag]
    if o["restart"]:
        name, _, count = o["restart"].partition(":")
        body["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count or 0)}
    if not body:
        raise UsageError("you must provide one or more flags when using this command")

    def one(c: Any, n: str) -> None:
        resp = c.json("POST", f"/containers/{n}/update", None, body) or {}
        for w in resp.get("Warnings") or []:
            err(w)
    return each(g, args, one)


# listing ----------------------------------------------------------------------------------------------
PS_DEFAULT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
              "CreatedAt": "CREATED AT", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES",
              "State": "STATE", "Size": "SIZE", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
              "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM"}


def display_ports(ports: list[dict[str, Any]]) -> str:
    """docker's DisplayablePorts: ``0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 53/udp``."""
    items = []
    for p in sorted(ports or [], key=lambda p: (p.get("Type", ""), p.get("PrivatePort", 0),
                                                p.get("IP", ""), p.get("PublicPort", 0))):
        proto = p.get("Type", "tcp")
        if p.get("PublicPort"):
            ip = p.get("IP", "")
            ip = f"[{ip}]" if ":" in ip else ip
            items.append(f"{ip}:{p['PublicPort']}->{p['PrivatePort']}/{proto}")
        else:
            items.append(f"{p['PrivatePort']}/{proto}")
    seen: list[str] = []
    for i in items:
        if i not in seen:
            seen.append(i)
    return ", ".join(seen)


class ContainerRow:
    """What ``{{.Field}}`` sees for one ``ps`` row (docker's ContainerContext)."""

    def __init__(self, c: dict[str, Any], trunc: bool) -> None:
        self.c = c
        self.trunc = trunc

    @property
    def ID(self) -> str:
        return short_id(self.c["Id"]) if self.trunc else self.c["Id"]

    @property
    def Names(self) -> str:
        names = [n[1:] if n.startswith("/") else n for n in self.c.get("Names") or []]
        if self.trunc:
            names = [n for n in names if "/" not in n][:1] or names[:1]
        return ",".join(names)

    @property
    def Image(self) -> str:
        img = self.c.get("Image") or "<no image>"
        if self.trunc and img.startswith("sha256:"):
            return short_id(img)
        return img

    @property
    def Command(self) -> str:
        cmd = self.c.get("Command") or ""
        if self.trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        from dockyard.client.fast import quote
        return quote(cmd)

    @property
    def CreatedAt(self) -> str:
        import time
        return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(self.c.get("Created", 0)))

    @property
    def RunningFor(self) -> str:
        return since(self.c.get("Created", 0))

    @property
    def Ports(self) -> str:
        return display_ports(self.c.get("Ports") or [])

    @property
    def State(self) -> str:
        return self.c.get("State", "")

    @property
    def Status(self) -> str:
        return self.c.get("Status", "")

    @property
    def Size(self) -> str:
        from dockyard.cli.common import human_size
        rw, root = self.c.get("SizeRw") or 0, self.c.get("SizeRootFs") or 0
        return f"{human_size(rw, 3)} (virtual {human_size(root, 3)})" if root > 0 else human_size(rw, 3)

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in (self.c.get("Labels") or {}).items())

    def Label(self, name: str) -> str:
        return (self.c.get("Labels") or {}).get(name, "")

    @property
    def Mounts(self) -> str:
        names = [m.get("Name") or m.get("Source", "") for m in self.c.get("Mounts") or []]
        if self.trunc:
            names = [n[:15] + "…" if len(n) > 15 else n for n in names]
        return ",".join(names)

    @property
    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    @property
    def Networks(self) -> str:
        return ",".join(sorted(((self.c.get("NetworkSettings") or {}).get("Networks") or {}).keys()))

    @property
    def Platform(self) -> str:
        return ""

    def as_dict(self) -> dict[str, Any]:
        keys = ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names",
                "Networks", "Platform", "Ports", "RunningFor", "Size", "State", "Status"]
        d = {k: getattr(self, k) for k in keys}
        d["Platform"] = None
        return d


def ps(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.template import render_rows
    o, args = parse(argv, "a|all q|quiet no-trunc f|filter* format= n|last# l|latest s|size")
    help_requested(o)
    if args:
        raise UsageError("'dockyard ps' accepts no arguments")
    query: dict[str, Any] = {"all": o["all"] or None, "filters": filters(o["filter"]), "size": o["size"] or None}
    if o["last"] is not None and o["last"] != -1:
        query["limit"] = o["last"]
    if o["latest"]:
        query["limit"] = 1
    rows = g.get_json("/containers/json", query)
    fmt = o["format"]
    if o["quiet"] and not fmt:
        fmt = "{{.ID}}"
    default = PS_DEFAULT + ("\t{{.Size}}" if o["size"] else "")
    sys.stdout.write(render_rows(fmt, [ContainerRow(r, not o["no_trunc"]) for r in rows], default, PS_HEADERS))
    return 0


def logs(g: Globals, argv: list[str]) -> int:
    from dockyard.client.api import demux
    o, args = parse(argv, "f|follow t|timestamps n|tail= since= until= details")
    help_requested(o)
    need(args, "logs", exactly=1)
    c = g.client
    tty = bool(c.json("GET", f"/containers/{args[0]}/json")["Config"].get("Tty"))
    resp = c.request("GET", f"/containers/{args[0]}/logs", {
        "stdout": True, "stderr": True, "follow": o["follow"], "timestamps": o["timestamps"],
        "tail": o["tail"] or "all", "since": o["since"], "until": o["until"], "details": o["details"]})
    if tty:
        while chunk := resp.read1(65536):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return 0

    class _R:
        def recv(self, n: int) -> bytes:
            return resp.read1(n)
    for stream, payload in demux(_R()):
        target = sys.stderr if stream == 2 else sys.stdout
        target.buffer.write(payload)
        target.flush()
    return 0


EXEC_SPEC = "d|detach i|interactive t|tty e|env* env-file* u|user= w|workdir= privileged detach-keys="


def exec_(g: Globals, argv: list[str]) -> int:
    from dockyard import errors
    o, args = parse(argv, EXEC_SPEC, interspersed=False)
    help_requested(o)
    need(args, "exec", at_least=2)
    if o["tty"] and o["interactive"] and not o["detach"] and not sys.stdin.isatty():
        raise UsageError("the input device is not a TTY")
    env: list[str] = []
    for f in o["env_file"]:
        env += parse_env_file(f)
    env += o["env"]
    c = g.client
    try:
        eid = c.json("POST", f"/containers/{args[0]}/exec", None, {
            "Cmd": args[1:], "Tty": o["tty"], "AttachStdin": o["interactive"] and not o["detach"],
            "AttachStdout": not o["detach"], "AttachStderr": not o["detach"], "Env": env or None,
            "User": o["user"] or "", "WorkingDir": o["workdir"] or "", "Privileged": o["privileged"],
            "DetachKeys": o["detach_keys"] or ""})["Id"]
    except errors.DockyardError as e:
        daemon_error(e)
        return 1 if isinstance(e, errors.NotFound | errors.Conflict) else 126
    if o["detach"]:
        c.request("POST", f"/exec/{eid}/start", body={"Detach": True, "Tty": o["tty"]}).read()
        return 0
    from dockyard.cli.streams import exec_and_stream
    return exec_and_stream(g, eid, tty=o["tty"], stdin=o["interactive"])


def attach(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "no-stdin sig-proxy= detach-keys=")
    help_requested(o)
    need(args, "attach", exactly=1)
    info = g.client.json("GET", f"/containers/{args[0]}/json")
    if not info["State"].get("Running"):
        raise UsageError("You cannot attach to a stopped container, start it first")
    if info["State"].get("Paused"):
        raise UsageError("You cannot attach to a paused container, unpause it first")
    from dockyard.cli.streams import attach_and_stream
    cfg = info["Config"]
    return attach_and_stream(g, info["Id"], tty=bool(cfg.get("Tty")),
                             stdin=bool(cfg.get("OpenStdin")) and not o["no_stdin"], start=False,
                             wait_condition="next-exit", detach_keys=o["detach_keys"],
                             sig_proxy=o["sig_proxy"] != "false")


def inspect(g: Globals, argv: list[str], kind: str | None = None) -> int:
    """``inspect`` (containers, then images, networks, volumes) or ``<kind> inspect``."""
    import json

    from dockyard import errors
    from dockyard.cli.template import go_json
    o, args = parse(argv, "f|format= s|size type=")
    help_requested(o)
    need(args, "inspect")
    kind = kind or o["type"]
    paths = {"container": "/containers/{}/json", "image": "/images/{}/json", "network": "/networks/{}",
             "volume": "/volumes/{}"}
    order = [kind] if kind else ["container", "image", "network", "volume"]
    if kind and kind not in paths:
        raise UsageError(f'"{kind}" is not a valid value for --type')
    found: list[Any] = []
    missing: list[str] = []
    for n in args:
        for k in order:
            try:
                found.append(g.get_json(paths[k].format(n),
                                        {"size": True} if k == "container" and o["size"] else None))
                break
            except errors.NotFound:
                continue
        else:
            missing.append(n)
    if o["format"]:
        from dockyard.cli.template import Template
        t = Template(o["format"].replace("\\t", "\t").replace("\\n", "\n")) if o["format"] != "json" else None
        for item in found:
            out(go_json(item) if t is None else t.render(item))
    else:
        # docker re-indents the API's bytes: no HTML escaping here, unlike {{json}}
        out(json.dumps(found, indent=4, ensure_ascii=False) if found else "[]")
    sys.stdout.flush()
    for n in missing:
        err(f"Error: No such {kind or 'object'}: {n}")
    return 1 if missing else 0


def container_inspect(g: Globals, argv: list[str]) -> int:
    return inspect(g, argv, "container")


def port(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "")
    help_requested(o)
    need(args, "port")
    info = g.client.json("GET", f"/containers/{args[0]}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(args) > 1:
        want, _, proto = args[1].partition("/")
        key = f"{want}/{proto or 'tcp'}"
        bindings = ports.get(key)
        if not bindings:
            raise UsageError(f"Error: No public port '{key}' published for {args[0]}")
        for b in bindings:
            ip = b.get("HostIp") or "0.0.0.0"
            out(f"{'[' + ip + ']' if ':' in ip else ip}:{b['HostPort']}")
        return 0
    for key in sorted(ports, key=lambda k: (k.split("/")[1], int(k.split("/")[0]))):
        for b in ports[key] or []:
            ip = b.get("HostIp") or "0.0.0.0"
            out(f"{key} -> {'[' + ip + ']' if ':' in ip else ip}:{b['HostPort']}")
    return 0


def top(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.template import tabwrite
    if argv[:1] in (["-h"], ["--help"]):
        help_requested({"help": True})
    need(argv, "top")
    query = {"ps_args": " ".join(argv[1:])} if len(argv) > 1 else None
    res = g.client.json("GET", f"/containers/{argv[0]}/top", query)
    lines = ["\t".join(res["Titles"])] + ["\t".join(p) for p in res.get("Processes") or []]
    sys.stdout.write(tabwrite(lines, minwidth=20, padding=1))
    return 0


def diff(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "")
    help_requested(o)
    need(args, "diff", exactly=1)
    for ch in g.client.json("GET", f"/containers/{args[0]}/changes") or []:
        out(f"{'CAD'[ch['Kind']]} {ch['Path']}")
    return 0


def _to_file_or_stdout(resp: Any, output: str | None, what: str) -> int:
    if not output and sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    import os
    if output:
        tmp = f"{output}.dockyard-tmp"
        try:
            with open(tmp, "wb") as f:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
            os.replace(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return 0
    while chunk := resp.read(1 << 20):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    return 0


def export(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "o|output=")
    help_requested(o)
    need(args, "export", exactly=1)
    return _to_file_or_stdout(g.client.request("GET", f"/containers/{args[0]}/export"), o["output"], "export")


def commit(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|author= c|change* m|message= p|pause= q|quiet")
    help_requested(o)
    if not 1 <= len(args) <= 2:
        raise UsageError("'dockyard commit' requires at least 1 and at most 2 arguments")
    repo, tag = "", ""
    if len(args) == 2:
        name = args[1]
        if ":" in name.rsplit("/", 1)[-1]:
            repo, tag = name.rsplit(":", 1)
        else:
            repo = name
    res = g.client.json("POST", "/commit", {
        "container": args[0], "repo": repo or None, "tag": tag or None, "author": o["author"],
        "comment": o["message"], "changes": o["change"] or None,
        "pause": o["pause"] != "false"}, {})
    out(res["Id"])
    return 0


def cp(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|archive L|follow-link q|quiet")
    help_requested(o)
    need(args, "cp", exactly=2)
    from dockyard.cli.copy import copy
    return copy(g, args[0], args[1], follow=o["follow_link"], quiet=o["quiet"])


def stats(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|all no-stream no-trunc format=")
    help_requested(o)
    from dockyard.cli.stats import show
    return show(g, args, all_=o["all"], stream=not o["no_stream"], fmt=o["format"], trunc=not o["no_trunc"])


def prune(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.common import confirm, human_size
    o, args = parse(argv, "f|force filter*")
    help_requested(o)
    if not confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
                   o["force"]):
        return 0
    res = g.client.json("POST", "/containers/prune", {"filters": filters(o["filter"])}) or {}
    deleted = res.get("ContainersDeleted") or []
    if deleted:
        out("Deleted Containers:")
        for d in deleted:
            out(d)
        out("")
    out(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed') or 0)}")
    return 0


_ = parse_iso
