"""The libnftables binding, in the test namespace."""

from __future__ import annotations

import pytest

from dockyard.network import nft

pytestmark = pytest.mark.root


def test_run_list_and_errors(netns_host: str) -> None:
    assert not nft.table_exists("ip", "dockyard_x")
    nft.run("add table ip dockyard_x\nadd chain ip dockyard_x c\nadd rule ip dockyard_x c tcp dport 1 accept\n")
    try:
        assert nft.table_exists("ip", "dockyard_x")
        rules = [o["rule"] for o in nft.list_json("chain ip dockyard_x c") if "rule" in o]
        assert len(rules) == 1 and rules[0]["expr"][-1] == {"accept": None}
        with pytest.raises(nft.NftError, match="syntax error"):
            nft.run("add rule ip dockyard_x c this is not nft\n")
        with pytest.raises(nft.NftError):  # one transaction: the valid first line is not applied
            nft.run("add rule ip dockyard_x c tcp dport 2 accept\nadd rule ip dockyard_x nochain accept\n")
        assert len([o for o in nft.list_json("chain ip dockyard_x c") if "rule" in o]) == 1
        with pytest.raises(nft.NftError):
            nft.list_json("chain ip dockyard_x missing")
    finally:
        nft.run("delete table ip dockyard_x\n")
    assert not nft.table_exists("ip", "dockyard_x")
