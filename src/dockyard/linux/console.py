"""The container's terminal: a pty from the container's own devpts instance.

``setup(console_fd)`` (in the container's init or exec'd process, after pivot_root): opens
/dev/ptmx, unlocks it, sends the master over the connected console socket ``console_fd``
(runc's protocol: the message payload is the slave's name, the fd travels as SCM_RIGHTS),
bind-mounts the slave over /dev/console (best effort, as runc does), makes the slave fds 0,
1, 2 and the controlling terminal. The caller must be a session leader (setsid).
"""

from __future__ import annotations

import fcntl
import os
import sys

from dockyard.linux import syscalls as s

_TIOCSPTLCK = 0x40045431
_TIOCGPTN = 0x80045430
_TIOCSCTTY = 0x540E


def open_pty() -> tuple[int, str]:
    """(master fd, slave path) of a new pty from /dev/ptmx."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, _TIOCSPTLCK, (0).to_bytes(4, sys.byteorder))
        num = int.from_bytes(fcntl.ioctl(master, _TIOCGPTN, bytes(4)), sys.byteorder)
    except OSError as e:
        os.close(master)
        raise OSError(e.errno, f"ioctl(/dev/ptmx, TIOCSPTLCK/TIOCGPTN): {e.strerror}") from None
    return master, f"/dev/pts/{num}"


def send_fd(sock_fd: int, name: str, fd: int) -> None:
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, sock_fd)
    try:
        sock.sendmsg([name.encode()],
                     [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))])
    except OSError as e:
        raise OSError(e.errno, f"sendmsg(console socket, {name}): {e.strerror}") from None
    finally:
        sock.close()


def setup(console_fd: int | None) -> None:
    master, name = open_pty()
    slave = os.open(name, os.O_RDWR | os.O_NOCTTY)
    try:
        if console_fd is not None:
            send_fd(console_fd, name, master)
    finally:
        os.close(master)
    try:
        if not os.path.exists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY, 0o600))
        s.mount(name, "/dev/console", None, s.MS_BIND)
    except OSError:
        pass  # a read-only /dev: the console bind is a convenience
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    try:
        fcntl.ioctl(0, _TIOCSCTTY, 0)
    except OSError as e:
        raise OSError(e.errno, f"ioctl(TIOCSCTTY, {name}): {e.strerror}") from None
