"""RUN: execute one command in a container whose root is the step's snapshot.

Lifecycle of ``run_container(...)`` (everything undone in reverse order, success or not)::

    <work>/<id>/                 the bundle (a temp dir of the build)
      config.json                OCI spec (daemon.oci_spec.build_spec: Docker's caps, masked
                                 paths, default seccomp; network: new netns with lo, or host)
      rootfs/                    the snapshot, mounted here by the caller-supplied mount()
      hostname hosts resolv.conf bind-mounted over /etc/* in the container
      mounts/                    RUN --mount sources that need a private copy (secrets, rw binds)

``<runtime> --root <state> run --bundle <bundle> <id>`` runs as a SUBPROCESS (fork+exec; the
daemon is threaded and never forks Python), or, given a ``launcher`` (builder/forkserver.py),
as a child of a pre-forked helper that runs dockyard-runtime's code; stdin /dev/null; stdout's lines
go to ``output`` as they arrive, stderr's to ``error_output`` (a pipe of its own) or, without
one, merged into stdout's pipe; ``cancelled()`` is polled twice a second and
ends the step with ``cancel.Cancelled``. Returns the exit code. The runtime deletes
the container after ``run``; a ``delete --force`` covers a runtime killed halfway or a step
cancelled while it runs.

Mount points the runtime had to create in the rootfs (``/etc/hosts`` on an image without one,
a ``--mount`` target) are removed again before the snapshot is committed, as BuildKit does, so
they never end up in the layer.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.builder.cancel import Cancelled
from dockyard.builder.forkserver import ForkServer, Run
from dockyard.daemon.oci_spec import SpecInputs, build_spec
from dockyard.linux.pathres import resolve


@dataclass(frozen=True)
class RunMount:
    """One extra mount of a RUN step: an OCI mount entry."""

    target: str
    source: str
    type: str = "bind"
    options: tuple[str, ...] = ("rbind", "ro")


@dataclass(frozen=True)
class RunSpec:
    cid: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str = ""
    network: str = "default"  # default | none | host
    mounts: tuple[RunMount, ...] = field(default=())
    extra_hosts: tuple[str, ...] = ()  # "name:ip", appended to /etc/hosts as docker's --add-host


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _host_resolv() -> str:
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        return "nameserver 8.8.8.8\n"
    # a loopback resolver of the host is unreachable from a new netns (Docker drops them too)
    lines = [ln for ln in text.splitlines() if not (ln.startswith("nameserver") and ("127." in ln or "::1" in ln))]
    if not any(ln.startswith("nameserver") for ln in lines):
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


def make_spec(spec: RunSpec, bundle: Path) -> dict[str, Any]:
    rootfs = bundle / "rootfs"
    hostname = spec.cid[:12]
    _write(bundle / "hostname", hostname + "\n")
    added = "".join(f"{ip}\t{name}\n" for name, _, ip in (h.partition(":") for h in spec.extra_hosts))
    _write(bundle / "hosts", f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{added}"
                             f"127.0.0.1\t{hostname}\n")
    _write(bundle / "resolv.conf", _host_resolv())
    extra = [{"destination": m.target, "type": m.type, "source": m.source, "options": list(m.options)}
             for m in spec.mounts]
    oci = build_spec(SpecInputs(
        cid=spec.cid,
        config={"Cmd": list(spec.argv), "Env": list(spec.env), "WorkingDir": spec.cwd,
                "User": spec.user, "Hostname": hostname},
        host_config={"ExtraMounts": extra},
        rootfs=rootfs,
        hostname_path=bundle / "hostname",
        hosts_path=bundle / "hosts",
        resolv_path=bundle / "resolv.conf",
        cgroups_path=f"dockyard-build/{spec.cid}",
        netns="host" if spec.network == "host" else None,
    ))
    return oci


def _mount_points(spec: RunSpec) -> list[str]:
    return ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"] + [m.target for m in spec.mounts]


def run_container(
    runtime: str,
    state_dir: Path,
    bundle: Path,
    spec: RunSpec,
    output: Callable[[str], None],
    cancelled: Callable[[], bool] | None = None,
    launcher: ForkServer | None = None,
    error_output: Callable[[str], None] | None = None,
) -> int:
    """Run ``spec`` in ``bundle`` (whose ``rootfs/`` is mounted). Returns the exit code.

    ``launcher``: start the runtime through this pre-forked helper (``runtime`` must then be
    dockyard-runtime: the helper runs its code) instead of as a program. ``error_output``: the
    command's stderr lines go there (else they are merged into ``output``, in order)."""
    rootfs = bundle / "rootfs"
    # what the runtime will create as mount points, so it can be removed again afterwards
    absent = [p for p in _mount_points(spec) if not os.path.lexists(resolve(rootfs, p, follow_final=False))]
    cwd = resolve(rootfs, spec.cwd)
    if not os.path.lexists(cwd):
        os.makedirs(cwd, 0o755)  # BuildKit creates a missing WORKDIR for RUN
    (bundle / "config.json").write_text(json.dumps(make_spec(spec, bundle)))
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = ["--root", str(state_dir), "run", "--bundle", str(bundle), spec.cid]
    proc: subprocess.Popen[bytes] | Run | None = None
    code: int | None = None
    try:
        split = error_output is not None
        if launcher is not None:
            with open(os.devnull, "rb") as null:
                proc = launcher.spawn(argv, str(bundle), stdin=null.fileno(), split_stderr=split)
        else:
            proc = subprocess.Popen(
                [runtime, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if split else subprocess.STDOUT, cwd=str(bundle), close_fds=True,
            )
        assert proc.stdout is not None
        sinks = {proc.stdout.fileno(): (proc.stdout, output, [b""])}
        if error_output is not None:
            assert proc.stderr is not None
            sinks[proc.stderr.fileno()] = (proc.stderr, error_output, [b""])
        with ExitStack() as pipes:
            for f, _, _ in sinks.values():
                pipes.enter_context(f)
            while sinks:
                ready = select.select(list(sinks), [], [], 0.5)[0]
                if not ready:
                    if cancelled is not None and cancelled():
                        raise Cancelled("the client closed the connection: build cancelled")
                    continue
                for fd in ready:
                    f, sink, pending = sinks[fd]
                    chunk = f.read1(65536)
                    if not chunk:
                        if pending[0]:
                            sink(pending[0].decode(errors="replace") + "\n")
                        del sinks[fd]
                        continue
                    *lines, pending[0] = (pending[0] + chunk).split(b"\n")
                    for ln in lines:
                        sink(ln.decode(errors="replace") + "\n")
        code = proc.wait()
    finally:
        # ``run`` deletes the container when it exits by itself; when it did not (the output
        # callback raised: the build was cancelled; or the runtime was killed), delete --force
        # kills and removes the container, then the runtime process is reaped
        if code is None or code < 0 or code == 137 or os.path.exists(state_dir / spec.cid):
            subprocess.run([runtime, "--root", str(state_dir), "delete", "--force", spec.cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if proc is not None and code is None:
            try:
                proc.wait(10)
            except (subprocess.TimeoutExpired, TimeoutError):
                proc.kill()
                proc.wait()
        for p in absent:
            host = resolve(rootfs, p, follow_final=False)
            try:
                if os.path.isdir(host) and not os.path.islink(host):
                    os.rmdir(host)
                elif os.path.lexists(host) and os.path.getsize(host) == 0:
                    os.unlink(host)
            except OSError:
                pass  # the command put something there: it belongs to the layer
    assert code is not None
    return code


