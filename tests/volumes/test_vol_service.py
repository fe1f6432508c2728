"""VolumeService: records, filters, in-use checks, prune, container steps; real mounts as root."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.volumes import local, spec
from dockyard.volumes.model import ANONYMOUS_LABEL
from dockyard.volumes.service import VolumeService


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(str(path))]


@pytest.fixture
def users() -> dict[str, list[str]]:
    return {}


@pytest.fixture
def vols(tmp_path: Path, users: dict[str, list[str]]) -> Iterator[VolumeService]:
    svc = VolumeService(tmp_path / "volumes", in_use=lambda n: users.get(n, []))
    try:
        yield svc
    finally:
        for mp in sorted(_mounts_under(tmp_path), reverse=True):  # a failed test's leftovers
            os.system(f"umount -l {mp}")  # noqa: S605 - a path under tmp_path only
        assert _mounts_under(tmp_path) == []


def test_create_get_list_filters(vols: VolumeService, users: dict[str, list[str]], tmp_path: Path) -> None:
    a = vols.create("alpha", labels={"team": "a", "tier": "db"})
    assert a.mountpoint == str(tmp_path / "volumes" / "alpha" / "_data") and os.path.isdir(a.mountpoint)
    assert json.loads((tmp_path / "volumes" / "alpha" / "volume.json").read_text())["name"] == "alpha"
    assert vols.create("alpha", labels={"other": "x"}) == a  # idempotent, as dockerd
    b = vols.create("beta")
    anon = vols.create()
    assert len(anon.name) == 64 and anon.anonymous and anon.labels == {ANONYMOUS_LABEL: ""}
    assert [v.name for v in vols.list()] == sorted(["alpha", "beta", anon.name])
    assert [v.name for v in vols.list({"label": ["team"]})] == ["alpha"]
    assert [v.name for v in vols.list({"label": ["team=b"]})] == []
    assert [v.name for v in vols.list({"label": ["team=a", "tier=db"]})] == ["alpha"]
    assert [v.name for v in vols.list({"name": ["et"]})] == ["beta"]
    assert [v.name for v in vols.list({"name": ["^al", "^be"]})] == ["alpha", "beta"]
    assert len(vols.list({"driver": ["local"]})) == 3 and vols.list({"driver": ["nfs"]}) == []
    users["alpha"] = ["c1"]
    assert [v.name for v in vols.list({"dangling": ["false"]})] == ["alpha"]
    assert "alpha" not in [v.name for v in vols.list({"dangling": ["1"]})]
    for bad, msg in (({"bogus": ["x"]}, "invalid filter 'bogus'"), ({"dangling": ["maybe"]}, "invalid filter 'dangling=maybe'")):
        with pytest.raises(InvalidArgument) as e:
            vols.list(bad)
        assert str(e.value) == msg
    assert vols.get("beta") == b
    with pytest.raises(NotFound) as nf:
        vols.get("gamma")
    assert str(nf.value) == "get gamma: no such volume"


@pytest.mark.parametrize("name", ["a", "../x", "a/b", ".hidden", "-x", "x y", "é1"])
def test_bad_names_leave_nothing(vols: VolumeService, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        vols.create(name)
    assert "includes invalid characters for a local volume name" in str(e.value)
    assert os.listdir(tmp_path / "volumes") == []


def test_bad_options(vols: VolumeService, tmp_path: Path) -> None:
    for opts, msg in (({"bogus": "1"}, 'create v1: invalid option: "bogus"'),
                      ({"type": "tmpfs"}, 'create v1: missing required option: "device"'),
                      ({"device": "/x"}, 'create v1: missing required option: "type"'),
                      ({"size": "10m"}, "create v1: quota size requested but no quota support")):
        with pytest.raises(InvalidArgument) as e:
            vols.create("v1", driver_opts=opts)
        assert str(e.value) == msg
    with pytest.raises(NotFound, match='plugin "nfs" not found'):
        vols.create("v1", driver="nfs")
    assert os.listdir(tmp_path / "volumes") == []


def test_remove_in_use_force_and_restart(vols: VolumeService, users: dict[str, list[str]], tmp_path: Path) -> None:
    v = vols.create("data")
    Path(v.mountpoint, "f").write_text("x")
    users["data"] = ["aaa", "bbb"]
    with pytest.raises(Conflict) as e:
        vols.remove("data", force=True)  # force does not override in-use, as dockerd
    assert str(e.value) == "remove data: volume is in use - [aaa, bbb]"
    users.clear()
    vols.acquire("data", "ccc")  # a running container's hold counts too
    with pytest.raises(Conflict, match=r"in use - \[ccc\]"):
        vols.remove("data")
    again = VolumeService(tmp_path / "volumes")  # restart: records and holds come back
    assert again.get("data") == v and again.users("data") == ["ccc"]
    again.reconcile(["someone-else"])
    assert again.users("data") == [] and not (tmp_path / "volumes" / "data" / "active.json").exists()
    again.remove("data")
    assert os.listdir(tmp_path / "volumes") == []
    with pytest.raises(NotFound):
        again.remove("data")
    again.remove("data", force=True)


def test_corrupt_record_is_moved_aside(tmp_path: Path) -> None:
    VolumeService(tmp_path / "v").create("ok1")
    d = tmp_path / "v" / "bad1"
    (d / "_data").mkdir(parents=True)
    (d / "volume.json").write_text("{not json")
    svc = VolumeService(tmp_path / "v")
    assert [v.name for v in svc.list()] == ["ok1"]
    assert (d / "volume.json.corrupt").exists()


def test_prune_usage(vols: VolumeService, users: dict[str, list[str]]) -> None:
    named = vols.create("named")
    anon1, anon2 = vols.create(), vols.create(labels={"keep": "yes"})
    used = vols.create()
    opt = vols.create("withopts", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    Path(anon1.mountpoint, "a").write_bytes(b"1" * 1000)
    os.link(Path(anon1.mountpoint, "a"), Path(anon1.mountpoint, "b"))  # counted once
    Path(anon1.mountpoint, "l").symlink_to("/etc/passwd")
    users[used.name] = ["c9"]
    assert vols.usage(anon1.name).size == 1000 + len("/etc/passwd")
    assert vols.usage(used.name).ref_count == 1 and vols.usage(opt.name).size == -1
    deleted, reclaimed = vols.prune({"label!": ["keep"]})
    assert deleted == [anon1.name] and reclaimed == 1000 + len("/etc/passwd")
    deleted, _ = vols.prune()
    assert deleted == [anon2.name]
    deleted, _ = vols.prune({"all": ["true"]})
    assert deleted == ["named"]  # the used one and the one with options stay
    assert {v.name for v in vols.list()} == {used.name, opt.name}
    with pytest.raises(InvalidArgument):
        vols.prune({"all": ["1", "0"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling'"):
        vols.prune({"dangling": ["true"]})
    assert named.name not in [v.name for v in vols.list()]


def test_container_steps(vols: VolumeService, tmp_path: Path, busybox_rootfs: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc" / "app").mkdir(parents=True)
    (rootfs / "etc" / "app" / "conf").write_text("image content")
    (rootfs / "var").mkdir()
    (rootfs / "var" / "lib").symlink_to("/etc/app")  # absolute link inside the image
    host_dir = tmp_path / "host" / "new"
    plans = spec.plan_mounts({"Binds": ["cfg:/var/lib", f"{host_dir}:/h", "keep:/k:nocopy"],
                              "Tmpfs": {"/run": ""}}, ["/etc/app", "/k"])
    prepared = vols.prepare(plans, "c1")
    by = {p.destination: p for p in prepared}
    assert by["/var/lib"].source == "cfg" and len(by["/etc/app"].source) == 64
    live = vols.mount_all(prepared, "c1", rootfs)
    lby = {p.destination: p for p in live}
    # the image's /var/lib resolves (inside the rootfs) to /etc/app: its content is copied up
    assert Path(lby["/var/lib"].host_path, "conf").read_text() == "image content"
    assert Path(lby["/etc/app"].host_path, "conf").read_text() == "image content"
    assert os.listdir(lby["/k"].host_path) == []  # nocopy
    assert host_dir.is_dir() and lby["/h"].host_path == str(host_dir)  # -v creates a missing host dir
    assert lby["/run"].host_path == ""
    assert sorted(vols.users("cfg")) == ["c1"]
    vols.unmount_all(live, "c1")
    assert vols.users("cfg") == []
    gone = vols.remove_anonymous(live)
    assert gone == [by["/etc/app"].source]
    assert sorted(v.name for v in vols.list()) == ["cfg", "keep"]


def test_prepare_failure_removes_what_it_made(vols: VolumeService) -> None:
    vols.create("exists")
    plans = spec.plan_mounts({"Binds": ["exists:/a", "fresh:/b"],
                              "Mounts": [{"Type": "volume", "Source": "bad1", "Target": "/c",
                                          "VolumeOptions": {"DriverConfig": {"Options": {"bogus": "1"}}}}]},
                             ["/anon"])
    with pytest.raises(InvalidArgument, match="invalid option"):
        vols.prepare(plans, "c1")
    assert [v.name for v in vols.list()] == ["exists"]


def test_mount_all_failure_releases(vols: VolumeService, tmp_path: Path) -> None:
    plans = vols.prepare([*spec.plan_mounts({"Binds": ["v1:/a"]}),
                          spec.parse_mount({"Type": "bind", "Source": str(tmp_path), "Target": "/b"})], "c1")
    (tmp_path / "gone").mkdir()
    plans[1] = plans[1].__class__(**{**plans[1].to_json(), "source": str(tmp_path / "gone" / "x")})
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        vols.mount_all(plans, "c1")
    assert vols.users("v1") == []


def test_subpath(vols: VolumeService) -> None:
    v = vols.create("sv")
    Path(v.mountpoint, "sub").mkdir()
    plans = vols.prepare([spec.parse_mount({"Type": "volume", "Source": "sv", "Target": "/s",
                                            "VolumeOptions": {"Subpath": "sub"}})], "c1")
    assert vols.mount_all(plans, "c1")[0].host_path == str(Path(v.mountpoint, "sub"))
    bad = vols.prepare([spec.parse_mount({"Type": "volume", "Source": "sv", "Target": "/s",
                                          "VolumeOptions": {"Subpath": "nope"}})], "c2")
    with pytest.raises(InvalidArgument, match="no such file"):
        vols.mount_all(bad, "c2")
    assert vols.users("sv") == ["c1"]


@pytest.mark.root
def test_tmpfs_volume_mounted_on_first_use(vols: VolumeService, tmp_path: Path) -> None:
    v = vols.create("scratch", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0750"})
    assert not local.is_mountpoint(v.mountpoint)
    assert vols.acquire("scratch", "c1") == v.mountpoint
    assert local.is_mountpoint(v.mountpoint)
    assert oct(os.stat(v.mountpoint).st_mode & 0o7777) == "0o750"
    Path(v.mountpoint, "f").write_text("x")
    assert vols.acquire("scratch", "c2") == v.mountpoint
    assert vols.acquire("scratch", "c2") == v.mountpoint  # idempotent per container
    vols.release("scratch", "c1")
    assert Path(v.mountpoint, "f").exists()  # still held by c2
    vols.release("scratch", "c2")
    assert not local.is_mountpoint(v.mountpoint) and not Path(v.mountpoint, "f").exists()
    vols.release("scratch", "c2")  # unknown holds are ignored
    vols.remove("scratch")
    assert _mounts_under(tmp_path) == []


@pytest.mark.root
def test_bind_volume_never_deletes_the_device(vols: VolumeService, tmp_path: Path) -> None:
    dev = tmp_path / "hostdata"
    dev.mkdir()
    (dev / "precious").write_text("keep me")
    v = vols.create("b1", driver_opts={"type": "none", "o": "bind,ro", "device": str(dev)})
    vols.acquire("b1", "c1")
    assert Path(v.mountpoint, "precious").read_text() == "keep me"
    with pytest.raises(OSError):
        Path(v.mountpoint, "new").write_text("ro")
    # a daemon restart with the hold lost: reconcile unmounts, removal keeps the device's data
    (tmp_path / "volumes" / "b1" / "active.json").unlink()
    again = VolumeService(tmp_path / "volumes")
    assert local.is_mountpoint(v.mountpoint)
    assert again.reconcile([]) == ["unmounted b1"]
    again.acquire("b1", "c2")
    again.release("b1", "c2")
    again.acquire("b1", "c3")
    with pytest.raises(Conflict):
        again.remove("b1")
    again.release("b1", "c3")
    again.remove("b1")
    assert (dev / "precious").read_text() == "keep me"
    assert _mounts_under(tmp_path) == []


@pytest.mark.root
def test_mount_error_is_clear_and_leaves_no_hold(vols: VolumeService, tmp_path: Path) -> None:
    vols.create("broken", driver_opts={"type": "none", "o": "bind", "device": str(tmp_path / "missing")})
    with pytest.raises(Exception) as e:
        vols.acquire("broken", "c1")
    assert "failed to mount local volume" in str(e.value) and "No such file" in str(e.value)
    assert vols.users("broken") == [] and "broken" not in vols._active and not local.is_mountpoint(vols.get("broken").mountpoint)


def test_in_use_callback_retried_when_the_engine_dict_moves(tmp_path: Path) -> None:
    calls = []

    def flaky(name: str) -> list[str]:
        calls.append(name)
        if len(calls) < 3:
            raise RuntimeError("dictionary changed size during iteration")
        return ["c1"]

    svc = VolumeService(tmp_path / "v", in_use=flaky)
    svc.create("busy")
    with pytest.raises(Conflict, match=r"\[c1\]"):
        svc.remove("busy")
    assert len(calls) == 3
