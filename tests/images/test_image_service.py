"""ImageService as dockyardd uses it: import, inspect, list, tag, remove, history, rootfs."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.images.service import ImageService

pytestmark = pytest.mark.root


def _import(svc: ImageService, tar: Path, tag: str | None = "busybox", **kw: object) -> str:
    with open(tar, "rb") as f:
        return svc.import_tarball(f, repo_tag=tag, **kw)  # type: ignore[arg-type]


def _content_size(tar: Path) -> int:
    """What docker shows as the layer's SIZE: file sizes plus symlink target lengths."""
    with tarfile.open(tar) as tf:
        return sum(m.size if m.isreg() else len(m.linkname) if m.issym() else 0 for m in tf)


def _store_files(svc: ImageService) -> set[str]:
    return {str(p.relative_to(svc.root)) for p in svc.root.rglob("*") if "metadata.db" not in p.name}


def test_import_inspect_list(svc: ImageService, busybox_tar: Path) -> None:
    iid = _import(svc, busybox_tar, changes=['CMD ["sh"]', "ENV A=1 B=two", "WORKDIR /srv", "EXPOSE 80"],
                  message="hello")
    assert iid.startswith("sha256:") and len(iid) == 71
    img = svc.get("busybox")
    assert img.id == iid
    assert img.repo_tags == ("busybox:latest",)
    cfg = img.config
    assert cfg["os"] == "linux" and cfg["architecture"]
    assert cfg["config"]["Cmd"] == ["sh"]
    assert cfg["config"]["Env"] == ["A=1", "B=two"]
    assert cfg["config"]["WorkingDir"] == "/srv"
    assert cfg["config"]["ExposedPorts"] == {"80/tcp": {}}
    assert cfg["comment"] == "hello"
    assert len(cfg["rootfs"]["diff_ids"]) == 1
    assert img.size == _content_size(busybox_tar)
    assert [i.id for i in svc.list()] == [iid]
    # every way docker lets a user name it
    for ref in ("busybox:latest", "docker.io/library/busybox", iid, iid[7:], iid[7:19], iid[:19]):
        assert svc.resolve(ref) == iid


def test_import_gzip_same_diff_id(svc: ImageService, busybox_tar: Path) -> None:
    plain = _import(svc, busybox_tar)
    gz = io.BytesIO(gzip.compress(busybox_tar.read_bytes()))
    gid = svc.import_tarball(gz, repo_tag="gz:1")
    assert svc.get(gid).diff_ids == svc.get(plain).diff_ids
    assert svc.get(gid).layer_blobs[0].media_type.endswith("+gzip")


@pytest.mark.parametrize("comp", ["xz", "bzip2", "zstd"])
def test_import_other_compressions(svc: ImageService, busybox_tar: Path, comp: str) -> None:
    import bz2
    import lzma

    import zstandard

    raw = busybox_tar.read_bytes()
    data = {"xz": lzma.compress, "bzip2": bz2.compress, "zstd": zstandard.ZstdCompressor().compress}[comp](raw)
    iid = svc.import_tarball(io.BytesIO(data), repo_tag=f"c:{comp}")
    layer = svc.get(iid).layer_blobs[0]
    if comp == "zstd":
        assert layer.media_type.endswith("+zstd") and layer.size == len(data)
    else:  # no OCI media type for these: stored uncompressed, so a registry and docker load accept it
        assert layer.media_type == "application/vnd.oci.image.layer.v1.tar" and layer.digest == layer.diff_id
        assert svc.content.read(layer.digest) == raw


def test_not_found_message_is_dockers(svc: ImageService) -> None:
    with pytest.raises(NotFound, match=r"^No such image: busybox:latest$"):
        svc.resolve("busybox")
    with pytest.raises(NotFound, match=r"^No such image: me/app:1$"):
        svc.get("docker.io/me/app:1")
    with pytest.raises(NotFound, match="No such image: 0123456789ab"):
        svc.resolve("0123456789ab")


def test_bad_change_and_tag_leave_nothing(svc: ImageService, busybox_tar: Path) -> None:
    before = _store_files(svc)
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        _import(svc, busybox_tar, changes=["RUN echo"])
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        _import(svc, busybox_tar, tag="Bad:Tag")
    assert _store_files(svc) == before
    assert svc.list() == []


def test_tag_and_remove_semantics(svc: ImageService, busybox_tar: Path) -> None:
    iid = _import(svc, busybox_tar)
    assert svc.tag("busybox", "other/repo", "v1") == "other/repo:v1"
    svc.tag(iid, "busybox", "second")
    assert set(svc.get(iid).repo_tags) == {"busybox:latest", "busybox:second", "other/repo:v1"}
    short = iid[7:19]
    with pytest.raises(Conflict, match=rf"unable to delete {short} \(must be forced\) - image is referenced in multiple repositories"):
        svc.remove(short)
    assert svc.remove("other/repo:v1") == [{"Untagged": "other/repo:v1"}]
    assert svc.remove("busybox:second") == [{"Untagged": "busybox:second"}]
    out = svc.remove("busybox")
    assert out == [{"Untagged": "busybox:latest"}, {"Deleted": iid}]
    assert svc.list() == []
    # blobs and unpacked layers are gone with the last image
    assert list(svc.content.walk()) == []
    assert svc.snapshots.list() == []


def test_force_remove_by_id_untags_all(svc: ImageService, busybox_tar: Path) -> None:
    iid = _import(svc, busybox_tar)
    svc.tag(iid, "a")
    out = svc.remove(iid, force=True)
    assert {"Untagged": "a:latest"} in out and {"Untagged": "busybox:latest"} in out
    assert out[-1] == {"Deleted": iid}


def test_rootfs_changes_commit_history(svc: ImageService, busybox_tar: Path, tmp_path: Path) -> None:
    iid = _import(svc, busybox_tar)
    mounts = svc.prepare_rootfs(iid, "c1")
    assert mounts and mounts[0].type == ("overlay" if svc.snapshots.name == "overlay" else "bind")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    svc.mount_rootfs("c1", mnt)
    try:
        subprocess.run(
            ["chroot", str(mnt), "/bin/sh", "-c", "echo hi > /tmp/x; rm /etc/group; mkdir -p /new/d"],
            check=True,
        )
    finally:
        svc.unmount_rootfs(mnt)
    got = {(c.path, c.kind) for c in svc.changes("c1")}
    assert {("/tmp/x", 1), ("/etc/group", 2), ("/new", 1), ("/new/d", 1)} <= got
    assert ("/etc/passwd", 0) not in got and ("/bin/sh", 0) not in got
    with pytest.raises(Conflict):
        svc.snapshots.remove(svc.get(iid).layers[-1])  # a container builds on it
    nid = svc.commit("c1", parent_image_id=iid, repo_tag="mine:1", comment="note", author="me",
                     changes=["CMD /bin/true"])
    new = svc.get("mine:1")
    assert new.id == nid and new.parent == iid
    assert new.config["config"]["Cmd"] == ["/bin/sh", "-c", "/bin/true"]
    assert len(new.layers) == 2
    hist = svc.history("mine:1")
    assert [h.id for h in hist] == [nid, iid]
    assert hist[0].comment == "note" and hist[0].tags == ("mine:1",)
    # the committed image has the changes
    svc.prepare_rootfs(nid, "c2")
    svc.mount_rootfs("c2", mnt)
    try:
        assert (mnt / "tmp/x").read_text() == "hi\n"
        assert not (mnt / "etc/group").exists()
        assert (mnt / "new/d").is_dir()
        assert (mnt / "etc/passwd").exists()
    finally:
        svc.unmount_rootfs(mnt)
    # the parent has a child now: deleting it by id is refused even with force
    with pytest.raises(Conflict, match="image has dependent child images"):
        svc.remove(iid, force=True)
    # export: the merged view as a tar
    buf = io.BytesIO()
    svc.export_rootfs("c2", buf)
    buf.seek(0)
    names = tarfile.open(fileobj=buf).getnames()
    assert "tmp/x" in names and "bin/busybox" in names and "etc/group" not in names
    svc.remove_rootfs("c2")
    svc.remove_rootfs("c1")
    svc.remove("mine:1")
    assert svc.list() != [] and svc.get(iid).repo_tags == ("busybox:latest",)


def test_prune_dangling(svc: ImageService, busybox_tar: Path) -> None:
    a = _import(svc, busybox_tar, tag=None, changes=["LABEL x=1"])
    b = _import(svc, busybox_tar, tag="kept")
    res = svc.prune()
    assert res["ImagesDeleted"] == [{"Deleted": a}]
    assert res["SpaceReclaimed"] == 0  # the layer is shared with the kept image
    assert [i.id for i in svc.list()] == [b]
    du = svc.disk_usage()
    assert du.layers_size == _content_size(busybox_tar) and du.images[0].id == b


def test_reopen_keeps_images(tmp_path: Path, busybox_tar: Path) -> None:
    s = ImageService(tmp_path / "st", snapshotter="overlay")
    iid = _import(s, busybox_tar)
    s.close()
    s2 = ImageService(tmp_path / "st", snapshotter="overlay")
    try:
        assert s2.get("busybox").id == iid
    finally:
        s2.close()


@pytest.mark.parametrize("bad", ["truncated-gzip", "truncated-tar", "escape"])
def test_hostile_or_corrupt_import_leaves_store_unchanged(svc: ImageService, busybox_tar: Path,
                                                           tmp_path: Path, bad: str) -> None:
    _import(svc, busybox_tar)  # something already there must stay as it is
    before = _store_files(svc)
    outside = tmp_path / "outside"
    outside.mkdir()
    raw = busybox_tar.read_bytes()
    if bad == "truncated-gzip":
        data = gzip.compress(raw)[:200_000]
    elif bad == "truncated-tar":
        data = raw[: len(raw) // 2 + 100]
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("esc")
            ti.type, ti.linkname = tarfile.SYMTYPE, str(outside)
            tf.addfile(ti)
            ti = tarfile.TarInfo("esc/pwned")
            ti.size = 1
            tf.addfile(ti, io.BytesIO(b"x"))
            ti = tarfile.TarInfo("../../../../pwned2")
            ti.size = 1
            tf.addfile(ti, io.BytesIO(b"x"))
        data = buf.getvalue()
    if bad == "escape":  # refused as moby refuses it (a chroot would confine it anyway)
        with pytest.raises(InvalidArgument, match="outside of the layer root"):
            svc.import_tarball(io.BytesIO(data), repo_tag="esc")
        assert list(outside.iterdir()) == []
        assert _store_files(svc) == before
        return
    with pytest.raises(InvalidArgument, match="truncated|unexpected end"):
        svc.import_tarball(io.BytesIO(data), repo_tag="broken")
    assert _store_files(svc) == before
    assert [i.repo_tags for i in svc.list()] == [("busybox:latest",)]


def test_crash_between_unpack_and_record_is_collected_on_start(tmp_path: Path, busybox_tar: Path) -> None:
    s = ImageService(tmp_path / "st", snapshotter="overlay")
    with open(busybox_tar, "rb") as f:
        s._ingest_and_unpack(f, None)  # blob + committed layer, then "crash": no image record
    assert len(list(s.content.walk())) == 1 and len(s.snapshots.list()) == 1
    s.close()
    s = ImageService(tmp_path / "st", snapshotter="overlay")
    try:
        assert list(s.content.walk()) == [] and s.snapshots.list() == []
        assert s.list() == []
    finally:
        s.close()


def test_derive_repo_digest_scratch_and_readonly(svc: ImageService, busybox_tar: Path, tmp_path: Path) -> None:
    base = _import(svc, busybox_tar)
    child = svc.derive(base, config={"Env": ["A=1"], "Cmd": ["sh"]}, created_by="/bin/sh -c #(nop) ENV A=1",
                       repo_tag="derived:1")
    img = svc.get("derived:1")
    assert img.id == child and img.parent == base and img.layers == svc.get(base).layers
    assert img.config["history"][-1]["empty_layer"] is True
    assert svc.children(base) == [child]
    assert [h.size for h in svc.history(child)] == [0, _content_size(busybox_tar)]
    digest = "sha256:" + "d" * 64
    assert svc.set_repo_digest(child, f"localhost:5000/team/app@{digest}") == f"localhost:5000/team/app@{digest}"
    assert svc.get(child).repo_digests == (f"localhost:5000/team/app@{digest}",)
    assert svc.resolve(f"localhost:5000/team/app@{digest}") == child
    with pytest.raises(InvalidArgument):
        svc.set_repo_digest(child, "localhost:5000/team/app:1")
    # FROM scratch: an empty writable root; committing it gives a one-layer image
    svc.prepare_rootfs(None, "scratch")
    (svc.snapshots.writable_dir("scratch") / "hello").write_text("hi")
    nid = svc.commit("scratch", parent_image_id=None, config={"Cmd": ["/hello"]}, repo_tag="scratchy")
    assert len(svc.get(nid).layers) == 1 and svc.get(nid).parent == ""
    # a read-only mount of a container's snapshot
    svc.prepare_rootfs(base, "ro")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    svc.mount_rootfs("ro", mnt, readonly=True)
    try:
        assert (mnt / "bin/busybox").exists()
        with pytest.raises(OSError):
            (mnt / "x").write_text("no")
    finally:
        svc.unmount_rootfs(mnt)
    svc.remove_rootfs("ro")
    svc.remove_rootfs("scratch")


def test_export_mount_left_by_a_dead_daemon_is_cleaned_on_start(tmp_path: Path, busybox_tar: Path) -> None:
    s = ImageService(tmp_path / "st", snapshotter="overlay")
    iid = _import(s, busybox_tar)
    s.prepare_rootfs(iid, "c")
    stale = s.root / "tmp" / "export-stale"
    stale.mkdir()
    s.mount_rootfs("c", stale)
    s.close()
    s = ImageService(tmp_path / "st", snapshotter="overlay")
    try:
        assert not stale.exists()
        with open("/proc/self/mountinfo") as f:
            assert str(stale) not in f.read()
    finally:
        s.close()


def test_concurrent_imports_of_the_same_layer(overlay_svc: ImageService, busybox_tar: Path) -> None:
    import threading

    ids: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with open(busybox_tar, "rb") as f:
                ids.append(overlay_svc.import_tarball(f, repo_tag=f"par:{i}", changes=["CMD x"]))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    layers = {overlay_svc.get(i).layers for i in ids}
    assert len(layers) == 1  # one shared unpacked layer
    assert [s.key for s in overlay_svc.snapshots.list()] == [next(iter(layers))[0]]


@pytest.mark.parametrize("kept", [False, True])
def test_removing_a_child_prunes_its_dangling_parent_unless_kept(svc: ImageService, busybox_tar: Path,
                                                                  kept: bool) -> None:
    base = _import(svc, busybox_tar)
    child = svc.derive(base, config={"Cmd": ["x"]}, repo_tag="child")
    assert svc.remove("busybox") == [{"Untagged": "busybox:latest"}]  # has a child: only untagged
    out = svc.remove("child", keep={base} if kept else ())
    if kept:
        assert out == [{"Untagged": "child:latest"}, {"Deleted": child}]
        assert svc.get(base).id == base
    else:
        assert out == [{"Untagged": "child:latest"}, {"Deleted": child}, {"Deleted": base}]
        assert svc.list() == [] and svc.snapshots.list() == []


def test_kill_9_during_import_leaves_a_consistent_store(tmp_path: Path, busybox_tar: Path) -> None:
    import os
    import signal
    import sys
    import time

    root = tmp_path / "st"
    ImageService(root, snapshotter="overlay").close()
    script = (
        "import sys; from pathlib import Path; from dockyard.images.service import ImageService;"
        f"s = ImageService(Path({str(root)!r}), snapshotter='overlay');"
        "print('ready', flush=True);"
        "s.import_tarball(sys.stdin.buffer, repo_tag='half')"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        data = busybox_tar.read_bytes()
        assert proc.stdin is not None
        proc.stdin.write(data[: len(data) // 2])
        proc.stdin.flush()
        # wait until the layer is being extracted: its snapshot directory has files in it
        for _ in range(500):
            if any((root / "snapshots/overlay/s").glob("*/fs/*")):
                break
            time.sleep(0.01)
        assert any((root / "snapshots/overlay/s").glob("*/fs/*"))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the importer and its extraction child
        proc.wait()
    s = ImageService(root, snapshotter="overlay")
    try:
        assert s.list() == []
        assert s.snapshots.list() == [] and list((root / "snapshots/overlay/s").iterdir()) == []
        assert list(s.content.walk()) == [] and list((root / "content/ingest").iterdir()) == []
        with open(busybox_tar, "rb") as f:  # and the store still works
            s.import_tarball(f, repo_tag="whole")
        assert s.get("whole").repo_tags == ("whole:latest",)
    finally:
        s.close()


def test_init_layer_hides_runtime_mount_points_from_diff_and_commit(svc: ImageService, busybox_tar: Path,
                                                                     tmp_path: Path) -> None:
    iid = _import(svc, busybox_tar)
    svc.prepare_rootfs(iid, "c")
    assert svc.changes("c") == []
    mnt = tmp_path / "m"
    mnt.mkdir()
    svc.mount_rootfs("c", mnt)
    try:
        for p in (".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "dev/console"):
            assert (mnt / p).is_file(), p
        assert (mnt / "dev/pts").is_dir() and (mnt / "dev/shm").is_dir()
        assert os.readlink(mnt / "etc/mtab") == "/proc/mounts"
        assert (mnt / "etc/passwd").read_text().startswith("root:")  # the image's own files stay
        (mnt / "etc/hostname").write_text("changed\n")  # what a runtime bind mount would hide
    finally:
        svc.unmount_rootfs(mnt)
    # overlay copies /etc up (so it shows as changed, as with docker's overlay2); a copy doesn't
    assert [(c.path, c.kind) for c in svc.changes("c") if c.path != "/etc"] == [("/etc/hostname", 0)]
    nid = svc.commit("c", parent_image_id=iid)
    top = svc.get(nid).layer_blobs[-1]
    with svc.content.open(top.digest) as f:
        names = tarfile.open(fileobj=f).getnames()
    assert "etc/hostname" in names and ".dockerenv" not in names and "etc/mtab" not in names
    svc.remove_rootfs("c")
    assert {i.key for i in svc.snapshots.list()} == set(svc.get(nid).layers)


def test_init_layer_never_follows_image_symlinks(svc: ImageService, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, target in (("etc", str(outside)), (".dockerenv", str(outside / "planted"))):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
        ti = tarfile.TarInfo("dev")  # a file where a directory is expected
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"x"))
    buf.seek(0)
    iid = svc.import_tarball(buf, repo_tag="evil")
    svc.prepare_rootfs(iid, "c")
    assert list(outside.iterdir()) == []
    fs = svc.snapshots.writable_dir("c-init")
    assert sorted(os.listdir(fs)) in (["proc", "sys"], [".dockerenv", "dev", "etc", "proc", "sys"])
    if svc.snapshots.apply_mode == "overlay":
        assert sorted(os.listdir(fs)) == ["proc", "sys"]
    else:  # a full copy: the image's own entries are there, untouched
        assert os.readlink(fs / "etc") == str(outside)
    svc.remove_rootfs("c")
    assert svc.snapshots.exists("c-init") is False
