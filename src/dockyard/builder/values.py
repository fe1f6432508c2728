"""Checks and conversions of instruction values once they are expanded (at dispatch time).

* ``exposed_ports(["80", "8000-8001/udp"])`` -> ``("80/tcp", "8000/udp", "8001/udp")``: the keys
  of the image config's ``ExposedPorts`` (Docker's nat.ParsePortSpecs: ``[ip:][hostPort:]
  containerPort[-end][/proto]``, proto tcp|udp|sctp, only the container side is kept).
* ``parse_signal("SIGKILL")`` / ``"KILL"`` / ``"9"`` -> the signal number (moby's ParseSignal).
* ``parse_chmod("755")`` -> 0o755 for octal modes; symbolic modes are returned as None and
  applied per file by the executor.
* ``normalize_workdir("/a", "b/../c")`` -> ``"/a/c"``: WORKDIR relative to the previous one.
* ``source_kind(src)`` -> ``"http"``, ``"git"`` or ``"local"`` for an ADD source.
* ``context_source(src)`` -> the path inside the context/stage root a COPY source names
  (leading ``/`` and ``..`` cannot leave the root; a trailing ``/`` does not matter).
* ``copy_dest(workdir, dest)`` -> the absolute destination, relative to WORKDIR, keeping a
  trailing ``/`` (which means "into this directory").

Errors raise InvalidArgument with Docker's wording (``invalid containerPort: x``, ``invalid
proto: x``, ``invalid signal: x``).
"""

from __future__ import annotations

import re
import signal as _signal

from dockyard.errors import InvalidArgument

PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", text)
    if m is None:
        raise ValueError(text)
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    if start > 65535 or end > 65535 or end < start:
        raise ValueError(text)
    return start, end


def exposed_ports(specs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for raw in specs:
        spec, _, proto = raw.partition("/")
        proto = proto or "tcp"
        if proto.lower() not in PROTOCOLS:
            raise InvalidArgument(f"invalid proto: {proto}")
        proto = proto.lower()
        # [ip:][hostPort:]containerPort; an IPv6 ip is bracketed
        container = spec.rsplit(":", 1)[-1]
        if container == "":
            raise InvalidArgument(f"no port specified: {raw}<empty>")
        try:
            start, end = _port_range(container)
        except ValueError:
            raise InvalidArgument(f"invalid containerPort: {container}") from None
        for port in range(start, end + 1):
            key = f"{port}/{proto}"
            if key not in out:
                out.append(key)
    return tuple(out)


def parse_signal(raw: str) -> int:
    if raw.isdigit():
        num = int(raw)
        if num == 0 or num > 64:
            raise InvalidArgument(f"invalid signal: {raw}")
        return num
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base, _, off = name[3:].partition("+" if "+" in name else "-")
        if off.isdigit():
            n = _signal.SIGRTMIN + int(off) if base == "RTMIN" else _signal.SIGRTMAX - int(off)
            if _signal.SIGRTMIN <= n <= _signal.SIGRTMAX:
                return int(n)
        raise InvalidArgument(f"invalid signal: {raw}")
    sig = getattr(_signal.Signals, name, None) if name in _signal.Signals.__members__ else None
    if sig is None:
        raise InvalidArgument(f"invalid signal: {raw}")
    return int(sig)


def parse_chmod(raw: str) -> int | None:
    if re.fullmatch(r"[0-7]{1,4}", raw):
        return int(raw, 8)
    clause = r"[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+"
    if re.fullmatch(rf"{clause}(?:,{clause})*", raw):
        return None
    raise InvalidArgument(
        f"invalid chmod parameter: '{raw}'. it should be octal string and between 0 and 07777"
    )


def normalize_workdir(current: str, wd: str) -> str:
    """BuildKit's NormalizeWorkdir for Linux: relative paths continue from ``current``."""
    import posixpath

    if not wd.startswith("/"):
        wd = posixpath.join("/", current or "/", wd)
    cleaned = posixpath.normpath(wd)
    return "/" + cleaned.lstrip("/")  # normpath keeps a leading "//"; Go's Clean does not


_GIT_URL = re.compile(r"^(?:git://|git@[^:]+:|ssh://|https?://[^#]+\.git(?:#.*)?$|github\.com/)")


def source_kind(src: str) -> str:
    """How ADD treats a source: a Git repository, an HTTP(S) download, or a context path."""
    if _GIT_URL.match(src):
        return "git"
    if src.startswith(("http://", "https://")):
        return "http"
    return "local"


def context_source(src: str) -> str:
    """Where a COPY/ADD source points inside its root, as a clean relative path ("." = all)."""
    import posixpath

    cleaned = posixpath.normpath("/" + src)  # ".." cannot climb above "/"
    rel = cleaned.lstrip("/")
    return rel or "."


def copy_dest(workdir: str, dest: str) -> str:
    """BuildKit's pathRelativeToWorkingDir: absolute dest, trailing "/" kept."""
    import posixpath

    keep_slash = dest.endswith("/") or dest in ("", ".")  # "" and "." mean "the workdir itself"
    if dest in ("", "."):
        dest = "./"
    base = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    cleaned = "/" + posixpath.normpath(base).lstrip("/")
    if keep_slash and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned
