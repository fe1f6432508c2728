"""Kernel settings written through /proc: sysctls (in the container's namespaces) and the
OOM score adjustment. Errors are ``OSError`` naming the file."""

from __future__ import annotations

import os


def _write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OSError(e.errno, f"open {path}: {os.strerror(e.errno or 0)}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise OSError(e.errno, f"write {value!r} to {path}: {os.strerror(e.errno or 0)}") \
            from None
    finally:
        os.close(fd)


def write_sysctl(key: str, value: str) -> None:
    """``net.ipv4.ip_forward`` → /proc/sys/net/ipv4/ip_forward (no path escapes)."""
    if "/" in key or ".." in key.split("."):
        raise OSError(22, f"invalid sysctl name {key!r}")
    _write("/proc/sys/" + key.replace(".", "/"), value)


def set_oom_score_adj(value: int) -> None:
    _write("/proc/self/oom_score_adj", str(value))
