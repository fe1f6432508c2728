"""Bring the loopback interface up (a new network namespace starts with ``lo`` down).

One SIOCGIFFLAGS/SIOCSIFFLAGS ioctl pair on a datagram socket: no netlink library needed.
"""

from __future__ import annotations

import _socket
import fcntl

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = bytearray(b"lo".ljust(16, b"\0") + bytes(24))
        fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, req)
        flags = int.from_bytes(req[16:18], "little") | _IFF_UP
        req[16:18] = flags.to_bytes(2, "little")
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, req)
    except OSError as e:
        raise OSError(e.errno, f"ioctl(SIOCSIFFLAGS, lo, IFF_UP): {e.strerror}") from None
    finally:
        sock.close()
