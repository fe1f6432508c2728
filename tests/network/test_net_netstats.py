from __future__ import annotations

import os

from dockyard.network.netstats import container_networks, parse_net_dev

SAMPLE = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1234      10    1    2    0     0          0         0     5678      12    3    4    0     0       0          0
  eth1: 9 8 7 6 0 0 0 0 5 4 3 2 0 0 0 0
"""


def test_parse_net_dev_reads_docker_counters_without_lo() -> None:
    nets = parse_net_dev(SAMPLE)
    assert set(nets) == {"eth0", "eth1"}
    assert nets["eth0"] == {"rx_bytes": 1234, "rx_packets": 10, "rx_errors": 1, "rx_dropped": 2,
                            "tx_bytes": 5678, "tx_packets": 12, "tx_errors": 3, "tx_dropped": 4}
    assert nets["eth1"]["tx_bytes"] == 5 and nets["eth1"]["rx_dropped"] == 6


def test_parse_net_dev_skips_malformed_lines() -> None:
    assert parse_net_dev("h1\nh2\n  eth0: 1 2 3\n junk\n  eth1: a b c d e f g h i j k l\n") == {}


def test_container_networks_host_mode_and_gone_pid() -> None:
    assert container_networks(os.getpid(), "host") is None
    assert container_networks(0, "bridge") is None
    assert container_networks(2**22 + 12345, "bridge") is None  # above pid_max: no such process
