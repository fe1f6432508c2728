"""Per-interface traffic counters of a container, for ``docker stats`` (``networks`` in the
stats JSON, the NET I/O column).

``/proc/<pid>/net/dev`` shows the interfaces of the network namespace ``pid`` lives in, so
the daemon reads a container's counters without entering its namespace. The loopback is left
out, as docker does; a container on the host's network shows none (docker neither).

``/proc/<pid>/net/dev`` (two header lines, then one line per interface)::

    Inter-|   Receive                                                |  Transmit
     face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop ...
      eth0:    1234      10    0    0    0     0          0         0     5678      12    0    0 ...
"""

from __future__ import annotations

from typing import Any

_RX = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
_TX = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """docker's per-interface counters from the text of a ``net/dev`` file (lo excluded)."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name or name == "lo":
            continue
        try:
            v = [int(x) for x in rest.split()]
        except ValueError:
            continue
        if len(v) < 12:
            continue
        out[name] = {**dict(zip(_RX, v[0:4], strict=True)), **dict(zip(_TX, v[8:12], strict=True))}
    return out


def container_networks(pid: int, network_mode: str) -> dict[str, Any] | None:
    """The ``networks`` member of docker's stats for the container whose init is ``pid``;
    None (the member is left out) for host networking, a gone process or only a loopback."""
    if not pid or network_mode == "host":
        return None
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            nets = parse_net_dev(f.read())
    except OSError:
        return None
    return nets or None
