"""Bring the loopback interface up (a new network namespace starts with ``lo`` down).

A SIOCGIFFLAGS/SIOCSIFFLAGS ioctl pair through ``syscalls.interface_up``: no netlink library,
and not even the ``_socket`` module (a few hundred microseconds on every container start).
"""

from __future__ import annotations

from dockyard.linux import syscalls


def loopback_up() -> None:
    syscalls.interface_up("lo")
