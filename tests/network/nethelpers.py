"""Helpers for the network tests (a uniquely named module: tests have no __init__.py)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Container:
    proc: subprocess.Popen[bytes]

    @property
    def netns(self) -> str:
        return f"/proc/{self.proc.pid}/ns/net"

    def run(self, *argv: str, timeout: float = 10, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["nsenter", f"--net={self.netns}", *argv], capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{argv} failed ({p.returncode}): {p.stdout} {p.stderr}")
        return p

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["nsenter", f"--net={self.netns}", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def python(self, code: str, timeout: float = 10) -> str:
        return self.run(sys.executable, "-c", code, timeout=timeout).stdout


ECHO_SERVER = """
import socket, sys
proto = sys.argv[1]; port = int(sys.argv[2]); tag = sys.argv[3]
if proto == 'tcp':
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port)); s.listen(8)
    print('ready', flush=True)
    while True:
        c, addr = s.accept()
        data = c.recv(1024)
        c.sendall(tag.encode() + b' ' + addr[0].encode() + b' ' + data)
        c.close()
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
    print('ready', flush=True)
    while True:
        data, addr = s.recvfrom(1024)
        print('got', addr[0], data.decode(errors='replace'), flush=True)
        s.sendto(tag.encode() + b' ' + addr[0].encode() + b' ' + data, addr)
"""


def start_echo(c: Container, port: int, tag: str, proto: str = "tcp") -> subprocess.Popen[str]:
    """An echo server in container ``c`` answering '<tag> <peer-ip> <data>'.

    The UDP server also prints ``got <peer-ip> <data>`` on its stdout for each datagram, so a
    test can see what arrived even when the answer cannot get back."""
    p = c.popen(sys.executable, "-c", ECHO_SERVER, proto, str(port), tag)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    return p


def tcp_ask(host: str, port: int, data: bytes = b"hi", timeout: float = 3) -> str:
    import socket

    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        return s.recv(1024).decode()
