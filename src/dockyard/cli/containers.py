"""Container verbs: run, create, start, ps, logs, exec, stop, kill, rm, inspect, wait."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from typing import Any

import click

from dockyard.cli.common import client_of, fail, parse_env_file, parse_size


def _config(image: str, command: tuple[str, ...], o: dict[str, Any]) -> dict[str, Any]:
    env = list(o["env"])
    for f in o["env_file"]:
        env = parse_env_file(f) + env
    labels = dict(x.split("=", 1) if "=" in x else (x, "") for x in o["label"])
    restart = o["restart"] or "no"
    rname, _, count = restart.partition(":")
    hc: dict[str, Any] = {
        "AutoRemove": o["rm"], "NetworkMode": o["network"] or "default", "Privileged": o["privileged"],
        "ReadonlyRootfs": o["read_only"], "CapAdd": list(o["cap_add"]) or None, "CapDrop": list(o["cap_drop"]) or None,
        "RestartPolicy": {"Name": rname, "MaximumRetryCount": int(count or 0)},
        "SecurityOpt": list(o["security_opt"]) or None, "Init": o["init"] or None,
        "Memory": parse_size(o["memory"]) if o["memory"] else 0,
        "NanoCpus": int(float(o["cpus"]) * 1e9) if o["cpus"] else 0,
        "PidsLimit": o["pids_limit"] or 0,
        "Tmpfs": {t.split(":", 1)[0]: (t.split(":", 1)[1] if ":" in t else "") for t in o["tmpfs"]} or None,
        "Binds": list(o["volume"]) or None,
        "PortBindings": _port_bindings(o["publish"]) or None,
    }
    return {
        "ExposedPorts": {k: {} for k in hc["PortBindings"] or {}} or None,
        "Image": image, "Cmd": list(command) or None, "Env": env or None, "Tty": o["tty"],
        "OpenStdin": o["interactive"], "StdinOnce": o["interactive"], "AttachStdin": o["interactive"],
        "AttachStdout": not o["detach"], "AttachStderr": not o["detach"],
        "WorkingDir": o["workdir"] or "", "User": o["user"] or "", "Hostname": o["hostname"] or "",
        "Entrypoint": [o["entrypoint"]] if o["entrypoint"] is not None else None, "Labels": labels,
        "HostConfig": hc,
    }


RUN_OPTIONS = [
    click.option("-d", "--detach", is_flag=True), click.option("-i", "--interactive", is_flag=True),
    click.option("-t", "--tty", is_flag=True), click.option("--rm", is_flag=True),
    click.option("--name"), click.option("-e", "--env", multiple=True),
    click.option("--env-file", multiple=True), click.option("-l", "--label", multiple=True),
    click.option("-w", "--workdir"), click.option("-u", "--user"), click.option("--entrypoint"),
    click.option("-h", "--hostname"), click.option("--network"), click.option("--privileged", is_flag=True),
    click.option("--read-only", is_flag=True), click.option("--cap-add", multiple=True),
    click.option("--cap-drop", multiple=True), click.option("--restart"),
    click.option("--security-opt", multiple=True), click.option("--init", is_flag=True),
    click.option("-m", "--memory"), click.option("--cpus"), click.option("--pids-limit", type=int),
    click.option("--tmpfs", multiple=True), click.option("-p", "--publish", multiple=True),
    click.option("-v", "--volume", multiple=True),
]


def _port_bindings(specs: tuple[str, ...]) -> dict[str, list[dict[str, str]]]:
    """``[ip:][hostPort:]containerPort[/proto]`` -> the Engine API's PortBindings."""
    out: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        spec, _, proto = spec.partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            ip, host, cport = parts
        elif len(parts) == 2:
            ip, (host, cport) = "", parts
        else:
            ip, host, cport = "", "", parts[0]
        if not cport.isdigit():
            raise click.BadParameter(f"invalid port specification: {spec!r}", param_hint="--publish")
        out.setdefault(f"{cport}/{proto or 'tcp'}", []).append({"HostIp": ip, "HostPort": host})
    return out


def run_options(f: Any) -> Any:
    for opt in reversed(RUN_OPTIONS):
        f = opt(f)
    return f


@click.command(context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
@run_options
@click.argument("image")
@click.argument("command", nargs=-1)
@click.pass_obj
def run(obj: dict[str, Any], image: str, command: tuple[str, ...], **o: Any) -> None:
    """Create and run a new container from an image."""
    from dockyard import errors
    from dockyard.cli.streams import copy_streams, raw_terminal
    c = client_of(obj)
    try:
        cid = c.create(_config(image, command, o), o["name"])
    except errors.DockyardError as e:
        fail(e, 125)
    if o["detach"]:
        try:
            c.start(cid)
        except errors.DockyardError as e:
            fail(e, 125)
        click.echo(cid)
        return
    sock = c.hijack(f"/containers/{cid}/attach", {"stream": True, "stdout": True, "stderr": True,
                                                 "stdin": o["interactive"]})
    waiter = c.wait(cid, "removed" if o["rm"] else "next-exit")
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(json.loads(waiter.read() or b"{}")), daemon=True)
    t.start()
    try:
        c.start(cid)
    except errors.DockyardError as e:
        sock.close()
        msg = str(e)
        code = 127 if ("executable file not found" in msg or "no such file or directory" in msg) else \
            126 if "permission denied" in msg else 125
        fail(e, code)
    if o["tty"] and sys.stdout.isatty():
        size = shutil.get_terminal_size()
        try:
            c.request("POST", f"/containers/{cid}/resize", {"h": size.lines, "w": size.columns}).read()
        except errors.DockyardError:
            pass
    with raw_terminal(o["tty"] and o["interactive"]):
        copy_streams(sock, tty=o["tty"], stdin=o["interactive"])
    t.join()
    sys.exit(int(result.get("StatusCode", 0)))


@click.command()
@run_options
@click.argument("image")
@click.argument("command", nargs=-1)
@click.pass_obj
def create(obj: dict[str, Any], image: str, command: tuple[str, ...], **o: Any) -> None:
    """Create a new container."""
    from dockyard import errors
    try:
        click.echo(client_of(obj).create(_config(image, command, o), o["name"]))
    except errors.DockyardError as e:
        fail(e, 125)


def _each(obj: dict[str, Any], names: tuple[str, ...], fn: Any) -> None:
    from dockyard import errors
    failed = False
    for n in names:
        try:
            fn(client_of(obj), n)
            click.echo(n)
        except errors.DockyardError as e:
            click.echo(f"Error response from daemon: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def start(obj: dict[str, Any], containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    _each(obj, containers, lambda c, n: c.start(n))


@click.command()
@click.option("-t", "--time", "timeout", type=int)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def stop(obj: dict[str, Any], timeout: int | None, containers: tuple[str, ...]) -> None:
    """Stop one or more running containers."""
    _each(obj, containers, lambda c, n: c.stop(n, timeout))


@click.command()
@click.option("-s", "--signal")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def kill(obj: dict[str, Any], signal: str | None, containers: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    _each(obj, containers, lambda c, n: c.kill(n, signal))


@click.command()
@click.option("-f", "--force", is_flag=True)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def rm(obj: dict[str, Any], force: bool, containers: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    _each(obj, containers, lambda c, n: c.remove(n, force))


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def wait(obj: dict[str, Any], containers: tuple[str, ...]) -> None:
    """Block until containers stop, then print their exit codes."""
    def one(c: Any, n: str) -> None:
        click.echo(json.loads(c.wait(n).read())["StatusCode"])
    from dockyard import errors
    for n in containers:
        try:
            one(client_of(obj), n)
        except errors.DockyardError as e:
            fail(e, 1)


@click.command()
@click.option("-a", "--all", "all_", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--no-trunc", is_flag=True)
@click.option("-f", "--filter", "filters", multiple=True)
@click.option("--format", "fmt")
@click.pass_obj
def ps(obj: dict[str, Any], all_: bool, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List containers."""
    from dockyard import errors
    flt: dict[str, list[str]] = {}
    for f in filters:
        k, _, v = f.partition("=")
        flt.setdefault(k, []).append(v)
    try:
        rows = client_of(obj).containers(all_, flt)
    except errors.DockyardError as e:
        fail(e, 1)
    for r in rows:
        r["Names"] = ",".join(n.lstrip("/") for n in r["Names"])
    if quiet:
        for r in rows:
            click.echo(r["Id"] if no_trunc else r["Id"][:12])
        return
    if fmt:
        for r in rows:
            click.echo(fmt.replace("{{.Names}}", r["Names"]).replace("{{.ID}}", r["Id"][:12])
                       .replace("{{.Image}}", r["Image"]).replace("{{.Status}}", r["Status"])
                       .replace("{{.Command}}", r["Command"]).replace("{{.State}}", r["State"]))
        return
    click.echo(f"{'CONTAINER ID':<15}{'IMAGE':<15}{'COMMAND':<25}{'STATUS':<25}NAMES")
    for r in rows:
        cmd = r["Command"] if no_trunc else (r["Command"][:20] + "…" if len(r["Command"]) > 21 else r["Command"])
        click.echo(f"{r['Id'][:12]:<15}{r['Image'][:14]:<15}{json.dumps(cmd, ensure_ascii=False):<25}{r['Status']:<25}{r['Names']}")


@click.command()
@click.option("-f", "--follow", is_flag=True)
@click.option("-t", "--timestamps", is_flag=True)
@click.option("-n", "--tail", default="all")
@click.option("--since")
@click.option("--until")
@click.argument("container")
@click.pass_obj
def logs(obj: dict[str, Any], follow: bool, timestamps: bool, tail: str, since: str | None, until: str | None,
         container: str) -> None:
    """Fetch the logs of a container."""
    from dockyard import errors
    from dockyard.client.api import demux
    c = client_of(obj)
    try:
        tty = bool(c.inspect(container)["Config"].get("Tty"))
        resp = c.logs(container, stdout=True, stderr=True, follow=follow, timestamps=timestamps, tail=tail,
                      since=since, until=until)
    except errors.DockyardError as e:
        fail(e, 1)
    if tty:
        while chunk := resp.read1(65536):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return

    class _R:
        def recv(self, n: int) -> bytes:
            return resp.read1(n)
    for stream, payload in demux(_R()):
        (sys.stderr if stream == 2 else sys.stdout).buffer.write(payload)
        (sys.stderr if stream == 2 else sys.stdout).flush()


@click.command(name="exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True)
@click.option("-i", "--interactive", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
@click.option("-e", "--env", multiple=True)
@click.option("-u", "--user")
@click.option("-w", "--workdir")
@click.option("--privileged", is_flag=True)
@click.argument("container")
@click.argument("command", nargs=-1, required=True)
@click.pass_obj
def exec_(obj: dict[str, Any], detach: bool, interactive: bool, tty: bool, env: tuple[str, ...], user: str | None,
          workdir: str | None, privileged: bool, container: str, command: tuple[str, ...]) -> None:
    """Execute a command in a running container."""
    from dockyard import errors
    from dockyard.cli.streams import copy_streams, raw_terminal
    c = client_of(obj)
    try:
        eid = c.exec_create(container, {"Cmd": list(command), "Tty": tty, "AttachStdin": interactive,
                                        "AttachStdout": not detach, "AttachStderr": not detach,
                                        "Env": list(env) or None, "User": user or "", "WorkingDir": workdir or "",
                                        "Privileged": privileged})
        if detach:
            c.request("POST", f"/exec/{eid}/start", body={"Detach": True, "Tty": tty}).read()
            return
        sock = c.hijack(f"/exec/{eid}/start", None, {"Detach": False, "Tty": tty})
    except errors.DockyardError as e:
        msg = str(e)
        fail(e, 127 if "not found" in msg or "no such file" in msg else 126)
    with raw_terminal(tty and interactive):
        copy_streams(sock, tty=tty, stdin=interactive)
    code = c.exec_inspect(eid).get("ExitCode")
    sys.exit(int(code or 0))


@click.command()
@click.option("-f", "--format", "fmt")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj: dict[str, Any], fmt: str | None, names: tuple[str, ...]) -> None:
    """Return low-level information on containers or images."""
    from dockyard import errors
    c = client_of(obj)
    out, failed = [], []
    for n in names:
        try:
            out.append(c.inspect(n))
        except errors.NotFound:
            try:
                out.append(c.json("GET", f"/images/{n}/json"))
            except errors.NotFound:
                failed.append(n)
    click.echo(json.dumps(out, indent=4))
    if failed:
        for n in failed:
            click.echo(f"Error: No such object: {n}", err=True)
        sys.exit(1)


COMMANDS = [run, create, start, stop, kill, rm, wait, ps, logs, exec_, inspect]
_ = os
