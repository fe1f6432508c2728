"""api.versions: the fields that come and go with the requested API version."""

from __future__ import annotations

from dockyard.api import versions


def summary() -> dict:
    return {"Id": "sha256:x", "Size": 10, "VirtualSize": 10}


def test_virtual_size_only_before_1_44() -> None:
    assert "VirtualSize" not in versions.image_summary(summary(), (1, 44))
    assert "VirtualSize" not in versions.image_summary(summary(), (1, 50))
    old = summary()
    del old["VirtualSize"]
    assert versions.image_summary(old, (1, 43))["VirtualSize"] == 10


def test_container_config_only_before_1_45() -> None:
    img = {"Id": "sha256:x", "Size": 1, "VirtualSize": 1, "Config": {"Volumes": {"/data": {}}}}
    old = versions.image_inspect(dict(img), (1, 30))
    assert old["ContainerConfig"]["Volumes"] == {"/data": {}} and old["Container"] == ""
    assert old["VirtualSize"] == 1
    mid = versions.image_inspect(dict(img), (1, 44))
    assert "ContainerConfig" in mid and "VirtualSize" not in mid
    new = versions.image_inspect(dict(img), (1, 45))
    assert "ContainerConfig" not in new and "Container" not in new


def inspect_doc() -> dict:
    return {"Id": "abcdef0123456789" * 4, "Config": {"Image": "busybox"},
            "NetworkSettings": {"MacAddress": "02:42:ac:11:00:02", "Networks": {
                "bridge": {"Aliases": None}, "appnet": {"Aliases": ["web"]}}}}


def test_container_inspect_old_shapes() -> None:
    old = versions.container_inspect(inspect_doc(), (1, 41))
    assert old["Config"]["MacAddress"] == "02:42:ac:11:00:02"
    assert old["NetworkSettings"]["Networks"]["appnet"]["Aliases"] == ["web", "abcdef012345"]
    assert old["NetworkSettings"]["Networks"]["bridge"]["Aliases"] is None
    new = versions.container_inspect(inspect_doc(), (1, 50))
    assert "MacAddress" not in new["Config"]
    assert new["NetworkSettings"]["Networks"]["appnet"]["Aliases"] == ["web"]


def test_system_df_images() -> None:
    d = {"Images": [summary(), summary()], "Containers": []}
    assert all("VirtualSize" not in i for i in versions.system_df(d, (1, 50))["Images"])
    d = {"Images": [{"Size": 3}]}
    assert versions.system_df(d, (1, 40))["Images"][0]["VirtualSize"] == 3
