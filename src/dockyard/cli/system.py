"""System verbs: version, info, events, system df|prune, login, logout, builder prune."""

from __future__ import annotations

import sys

from dockyard.cli.common import Globals, UsageError, confirm, err, filters, human_size, out
from dockyard.cli.containers import help_requested, need
from dockyard.cli.flags import parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

API_VERSION = "1.50"


def _client_info() -> dict[str, Any]:
    import os

    from dockyard import __version__
    machine = os.uname().machine
    return {"Platform": {"Name": "Dockyard"}, "Version": __version__, "ApiVersion": API_VERSION,
            "GoVersion": "python" + sys.version.split()[0], "Os": "linux",
            "Arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
            "Context": "default"}


def version(g: Globals, argv: list[str]) -> int:
    from dockyard import errors
    o, args = parse(argv, "f|format=")
    help_requested(o)
    client = _client_info()
    server: dict[str, Any] | None = None
    failure: BaseException | None = None
    try:
        server = g.get_json("/version")
    except errors.DockyardError as e:
        failure = e
    if o["format"]:
        from dockyard.cli.template import Template
        fmt = "{{json .}}" if o["format"] == "json" else o["format"]
        out(Template(fmt).render({"Client": client, "Server": server}))
    else:
        lines = ["Client: Dockyard", f" Version:           {client['Version']}",
                 f" API version:       {client['ApiVersion']}", f" Python version:    {client['GoVersion'][6:]}",
                 f" OS/Arch:           {client['Os']}/{client['Arch']}", " Context:           default"]
        if server:
            lines += ["", f"Server: {((server.get('Platform') or {}).get('Name') or 'Dockyard')}", " Engine:",
                      f"  Version:          {server.get('Version', '')}",
                      f"  API version:      {server.get('ApiVersion', '')} (minimum version "
                      f"{server.get('MinAPIVersion', '')})",
                      f"  Git commit:       {server.get('GitCommit', '')}",
                      f"  Built:            {server.get('BuildTime', '')}",
                      f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}",
                      f"  Experimental:     {str(server.get('Experimental', False)).lower()}",
                      f"  Kernel Version:   {server.get('KernelVersion', '')}"]
            for comp in server.get("Components") or []:
                if comp.get("Name") != "Engine":
                    lines += [f" {comp.get('Name')}:", f"  Version:          {comp.get('Version', '')}"]
        sys.stdout.write("\n".join(lines) + "\n")
    if failure is not None:
        err(str(failure))
        return 1
    return 0


def info(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "f|format=")
    help_requested(o)
    i = g.client.json("GET", "/info")
    if o["format"]:
        from dockyard.cli.template import Template
        fmt = "{{json .}}" if o["format"] == "json" else o["format"]
        out(Template(fmt).render(i))
        return 0
    from dockyard.cli.common import bytes_size
    runtimes = " ".join(sorted((i.get("Runtimes") or {}).keys()))
    lines = [
        "Client:", f" Version:    {_client_info()['Version']}", " Context:    default", "",
        "Server:",
        f" Containers: {i.get('Containers', 0)}", f"  Running: {i.get('ContainersRunning', 0)}",
        f"  Paused: {i.get('ContainersPaused', 0)}", f"  Stopped: {i.get('ContainersStopped', 0)}",
        f" Images: {i.get('Images', 0)}", f" Server Version: {i.get('ServerVersion', '')}",
        f" Storage Driver: {i.get('Driver', '')}",
        *[f"  {k}: {v}" for k, v in i.get("DriverStatus") or []],
        f" Logging Driver: {i.get('LoggingDriver', '')}", f" Cgroup Driver: {i.get('CgroupDriver', '')}",
        f" Cgroup Version: {i.get('CgroupVersion', '')}",
        f" Runtimes: {runtimes}", f" Default Runtime: {i.get('DefaultRuntime', '')}",
        f" Init Binary: {i.get('InitBinary', '')}",
        f" Kernel Version: {i.get('KernelVersion', '')}", f" Operating System: {i.get('OperatingSystem', '')}",
        f" OSType: {i.get('OSType', '')}", f" Architecture: {i.get('Architecture', '')}",
        f" CPUs: {i.get('NCPU', 0)}", f" Total Memory: {bytes_size(i.get('MemTotal') or 0)}",
        f" Name: {i.get('Name', '')}", f" ID: {i.get('ID', '')}",
        f" Docker Root Dir: {i.get('DockerRootDir', '')}",
        f" Debug Mode: {str(bool(i.get('Debug'))).lower()}",
        f" Experimental: {str(bool(i.get('ExperimentalBuild'))).lower()}",
        f" Live Restore Enabled: {str(bool(i.get('LiveRestoreEnabled'))).lower()}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    for w in i.get("Warnings") or []:
        err(w)
    return 0


def _event_line(e: dict[str, Any]) -> str:
    import time
    tn = e.get("timeNano") or int((e.get("time") or 0) * 1e9)
    secs, nanos = divmod(tn, 1_000_000_000)
    lt = time.localtime(secs)
    z = time.strftime("%z", lt)
    tz = "Z" if z == "+0000" else f"{z[:3]}:{z[3:]}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{nanos:09d}{tz}"
    actor = e.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    tail = f" ({', '.join(f'{k}={attrs[k]}' for k in sorted(attrs))})" if attrs else ""
    return f"{stamp} {e.get('Type', '')} {e.get('Action', '')} {actor.get('ID', '')}{tail}"


def timestamp(value: str | None) -> str | None:
    """docker's GetTimestamp: ``10m`` / ``1h30m`` (ago), an RFC 3339 date, or epoch seconds."""
    if not value:
        return value
    import time
    if value[0].isdigit() and value[-1] in "smh" and not value.replace(".", "").isdigit():
        from dockyard.cli.containers import _duration_ns
        return f"{time.time() - _duration_ns(value) / 1e9:.9f}"
    if "-" in value[1:] or "T" in value:
        from dockyard.cli.common import parse_iso
        text = value if ("Z" in value or "+" in value or value.count("-") > 2) else value + "Z"
        if "T" not in text:
            text = text.replace("Z", "T00:00:00Z")
        return f"{parse_iso(text):.9f}"
    return value


def events(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "f|filter* format= since= until=")
    help_requested(o)
    resp = g.client.request("GET", "/events", {"since": timestamp(o["since"]), "until": timestamp(o["until"]),
                                               "filters": filters(o["filter"])})
    import json
    tmpl = None
    if o["format"]:
        from dockyard.cli.template import Template
        tmpl = Template("{{json .}}" if o["format"] == "json" else o["format"])
    try:
        buf = b""
        while chunk := resp.read1(65536):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    e = json.loads(line)
                    out(tmpl.render(e) if tmpl else _event_line(e))
                    sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


DF_DEFAULT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}


class _DfRow:
    def __init__(self, typ: str, total: int, active: int, size: int, reclaim: int, pct: bool) -> None:
        self.Type, self.TotalCount, self.Active = typ, str(total), str(active)
        self.Size = human_size(size)
        self.Reclaimable = human_size(reclaim)
        if pct and size > 0:
            self.Reclaimable += f" ({int(reclaim * 100 / size) if size else 0}%)"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("Active", "Reclaimable", "Size", "TotalCount", "Type")}


def df(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.template import render_rows
    o, args = parse(argv, "v|verbose format=")
    help_requested(o)
    d = g.client.json("GET", "/system/df")
    imgs = d.get("Images") or []
    cts = d.get("Containers") or []
    vols = d.get("Volumes") or []
    cache = d.get("BuildCache") or []
    img_size = d.get("LayersSize") or sum(i.get("Size", 0) for i in imgs)
    used = sum(i.get("Size", 0) - max(i.get("SharedSize", 0), 0) for i in imgs if (i.get("Containers") or 0) > 0)
    rows = [
        _DfRow("Images", len(imgs), sum(1 for i in imgs if (i.get("Containers") or 0) > 0), img_size,
               max(img_size - used, 0), True),
        _DfRow("Containers", len(cts), sum(1 for c in cts if c.get("State") == "running"),
               sum(c.get("SizeRw") or 0 for c in cts),
               sum(c.get("SizeRw") or 0 for c in cts if c.get("State") != "running"), True),
        _DfRow("Local Volumes", len(vols), sum(1 for v in vols if ((v.get("UsageData") or {}).get("RefCount") or 0) > 0),
               sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in vols),
               sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in vols
                   if ((v.get("UsageData") or {}).get("RefCount") or 0) == 0), True),
        _DfRow("Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")),
               sum(b.get("Size", 0) for b in cache),
               sum(b.get("Size", 0) for b in cache if not b.get("InUse") and not b.get("Shared")), False),
    ]
    sys.stdout.write(render_rows(o["format"], rows, DF_DEFAULT, DF_HEADERS))
    return 0


def system_prune(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|all f|force volumes filter*")
    help_requested(o)
    items = ["all stopped containers", "all networks not used by at least one container"]
    if o["volumes"]:
        items.append("anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them" if o["all"] else
                 "all dangling images")
    items.append("unused build cache" if o["all"] else "all dangling build cache")
    warn = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
    if not confirm(warn + "\nAre you sure you want to continue?", o["force"]):
        return 0
    flt = filters(o["filter"]) or {}
    c = g.client
    total = 0
    r = c.json("POST", "/containers/prune", {"filters": flt or None}) or {}
    total += r.get("SpaceReclaimed") or 0
    if r.get("ContainersDeleted"):
        out("Deleted Containers:\n" + "\n".join(r["ContainersDeleted"]) + "\n")
    r = c.json("POST", "/networks/prune", {"filters": flt or None}) or {}
    if r.get("NetworksDeleted"):
        out("Deleted Networks:\n" + "\n".join(r["NetworksDeleted"]) + "\n")
    if o["volumes"]:
        r = c.json("POST", "/volumes/prune", {"filters": flt or None}) or {}
        total += r.get("SpaceReclaimed") or 0
        if r.get("VolumesDeleted"):
            out("Deleted Volumes:\n" + "\n".join(r["VolumesDeleted"]) + "\n")
    r = c.json("POST", "/images/prune", {"filters": {**flt, "dangling": ["false" if o["all"] else "true"]}}) or {}
    total += r.get("SpaceReclaimed") or 0
    if r.get("ImagesDeleted"):
        out("Deleted Images:\n" + "\n".join(f"{k.lower()}: {v}" for d in r["ImagesDeleted"] for k, v in d.items())
            + "\n")
    r = c.json("POST", "/build/prune", {"all": o["all"] or None}) or {}
    total += r.get("SpaceReclaimed") or 0
    if r.get("CachesDeleted"):
        out("Deleted build cache objects:\n" + "\n".join(r["CachesDeleted"]) + "\n")
    out(f"Total reclaimed space: {human_size(total)}")
    return 0


def builder_prune(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|all f|force filter* keep-storage= max-used-space= reserved-space=")
    help_requested(o)
    warn = ("WARNING! This will remove all build cache." if o["all"] else
            "WARNING! This will remove all dangling build cache.")
    if not confirm(warn + " Are you sure you want to continue?", o["force"]):
        return 0
    r = g.client.json("POST", "/build/prune", {"all": o["all"] or None, "filters": filters(o["filter"])}) or {}
    if r.get("CachesDeleted"):
        out("ID\tRECLAIMABLE\tSIZE\tLAST ACCESSED")
        for cid in r["CachesDeleted"]:
            out(cid)
    out(f"Total:\t{human_size(r.get('SpaceReclaimed') or 0)}")
    return 0


# login / logout -------------------------------------------------------------------------------------
# Credentials go where the docker CLI puts them: a credential helper (credHelpers/credsStore in
# config.json) or the file itself (distribution/credstore.py).


def login(g: Globals, argv: list[str]) -> int:
    from dockyard.distribution import credstore
    from dockyard.distribution.auth import Credentials
    o, args = parse(argv, "u|username= p|password= password-stdin")
    help_requested(o)
    if len(args) > 1:
        raise UsageError("'dockyard login' requires at most 1 argument")
    key = credstore.auth_key(args[0] if args else None)
    user, password = o["username"], o["password"]
    if o["password_stdin"]:
        if password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not user:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not user:
        sys.stdout.write("Username: ")
        sys.stdout.flush()
        user = sys.stdin.readline().strip()
    if not password:
        import getpass
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise UsageError("Error: Non-null Username and Password Required")
    res = g.client.json("POST", "/auth", None, {"username": user, "password": password, "serveraddress": key}) or {}
    creds = Credentials(user, password)
    if res.get("IdentityToken"):
        creds = Credentials(user, "", identity_token=res["IdentityToken"])
    credstore.store(key, creds)
    out("Login Succeeded")
    return 0


def logout(g: Globals, argv: list[str]) -> int:
    from dockyard.distribution import credstore
    from dockyard.errors import Unavailable
    o, args = parse(argv, "")
    help_requested(o)
    if len(args) > 1:
        raise UsageError("'dockyard logout' requires at most 1 argument")
    key = credstore.auth_key(args[0] if args else None)
    doc = credstore.read_config()
    auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
    if not any(credstore.auth_key(k) == key for k in auths or {}):
        out(f"Not logged in to {key}")
        return 0
    out(f"Removing login credentials for {key}")
    try:
        credstore.erase(key)
    except Unavailable as e:  # docker warns and goes on: the file entry is gone already
        err(f"WARNING: could not erase credentials: {key}: {e}")
    return 0


_ = need
