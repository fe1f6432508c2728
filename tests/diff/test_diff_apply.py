"""Layer extraction: whiteouts, device nodes, and hostile layers that try to escape the target."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.diff.apply import apply_layer
from dockyard.diff.compute import naive_changes, overlay_changes, write_tar
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.root


def _ti(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", data: bytes = b"", **kw: int) -> tuple:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.size = kind, linkname, len(data)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, (io.BytesIO(data) if data else None)


def _layer(*members: tuple) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, f in members:
            if f is not None:
                f.seek(0)  # a parametrized member is used again by the next run
            tf.addfile(ti, f)
    buf.seek(0)
    return buf


class _Blob:
    """A file sink like the content store's Writer (what ``blob=`` takes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "wb")  # noqa: SIM115 - closed by the fixture

    def write(self, data: bytes | memoryview) -> None:
        self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


@pytest.fixture(autouse=True, params=["pipe", "blob", "file"])
def via(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs three times: the layer piped to the extractor; stored to a blob
    file that the extractor follows (``apply_layer(..., blob=...)``, what a load or an import
    does; the blob must then hold the input exactly); read from a regular file (a stored blob
    unpacked again), which the extractor reads too."""
    if request.param == "file":
        real_file = apply_layer

        def from_file(src, target, mode, **kw):  # type: ignore[no-untyped-def]
            if not isinstance(src, io.BytesIO):
                return real_file(src, target, mode, **kw)
            path = tmp_path_factory.mktemp("layer") / "layer.tar"
            path.write_bytes(src.getvalue()[src.tell():])
            with open(path, "rb") as f:
                return real_file(f, target, mode, **kw)

        monkeypatch.setitem(globals(), "apply_layer", from_file)
    if request.param == "blob":
        real = apply_layer

        def through_blob(src, target, mode, **kw):  # type: ignore[no-untyped-def]
            blob = _Blob(tmp_path_factory.mktemp("blob") / "ingest")
            try:
                applied = real(src, target, mode, blob=blob, **kw)
            finally:
                blob._f.close()
            if isinstance(src, io.BytesIO):
                assert blob.path.read_bytes() == src.getvalue()
            return applied

        monkeypatch.setitem(globals(), "apply_layer", through_blob)
    return str(request.param)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """(target, outside): a sentinel file lives outside the target."""
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (outside / "sentinel").write_text("untouched")
    return target, outside


def _assert_outside_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel"]
    assert (outside / "sentinel").read_text() == "untouched"
    assert os.stat(outside / "sentinel").st_nlink == 1


@pytest.mark.parametrize("mode", ["overlay", "naive"])
def test_symlink_planted_then_written_through_stays_inside(world: tuple[Path, Path], mode: str) -> None:
    target, outside = world
    layer = _layer(
        # The same path exists inside the target: the symlink must resolve to that one.
        _ti(str(outside).lstrip("/"), tarfile.DIRTYPE, mode=0o755),
        _ti("evil", tarfile.SYMTYPE, linkname=str(outside)),
        _ti("evil/pwned", data=b"gotcha"),
    )
    apply_layer(layer, target, mode)
    _assert_outside_untouched(outside)
    # Resolved inside the target, as a chroot would.
    assert (target / str(outside).lstrip("/") / "pwned").read_bytes() == b"gotcha"
    assert os.readlink(target / "evil") == str(outside)


@pytest.mark.parametrize("member", [
    _ti("rel", tarfile.SYMTYPE, linkname="../../../../../../etc"),  # from the root
    _ti("a/b/rel", tarfile.SYMTYPE, linkname="../../../etc"),  # one level too many
    _ti("../outside/pwned", data=b"x"),
    _ti("a/../../../b", data=b"y"),
    _ti("h", tarfile.LNKTYPE, linkname="../../etc/passwd"),
])
def test_names_and_links_climbing_above_the_root_are_refused(world: tuple[Path, Path], member) -> None:
    """moby's breakout checks: a name, a hard link target or a relative symlink target that
    climbs above the layer's root is refused (the chroot would confine it anyway)."""
    target, outside = world
    with pytest.raises(InvalidArgument, match="outside of the layer root"):
        apply_layer(_layer(_ti("a/b", tarfile.DIRTYPE, mode=0o755), member), target, "overlay")
    _assert_outside_untouched(outside)


def test_relative_symlinks_that_stay_inside_are_kept(world: tuple[Path, Path]) -> None:
    target, _ = world
    apply_layer(_layer(_ti("usr/lib", tarfile.DIRTYPE, mode=0o755),
                       _ti("usr/lib/x", tarfile.SYMTYPE, linkname="../../lib/x"),
                       _ti("up", tarfile.SYMTYPE, linkname="usr/../usr/lib")), target, "overlay")
    assert os.readlink(target / "usr/lib/x") == "../../lib/x"
    assert os.readlink(target / "up") == "usr/../usr/lib"


def test_dangling_symlink_parent_is_replaced_not_followed(world: tuple[Path, Path]) -> None:
    target, outside = world
    apply_layer(_layer(_ti("d", tarfile.SYMTYPE, linkname=str(outside)), _ti("d/pwned", data=b"x")),
                target, "overlay")
    _assert_outside_untouched(outside)
    assert (target / "d/pwned").read_bytes() == b"x"


def test_hardlink_to_host_file_is_not_created(world: tuple[Path, Path]) -> None:
    target, outside = world
    layer = _layer(_ti("h", tarfile.LNKTYPE, linkname=str(outside / "sentinel")), _ti("h", data=b"overwrite"))
    try:
        apply_layer(layer, target, "overlay")
    except InvalidArgument:
        pass  # refusing is as good as confining
    _assert_outside_untouched(outside)


def test_absolute_symlinks_are_kept_verbatim(world: tuple[Path, Path]) -> None:
    target, _ = world
    apply_layer(_layer(_ti("bin", tarfile.DIRTYPE, mode=0o755), _ti("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox")),
                target, "overlay")
    assert os.readlink(target / "bin/sh") == "/bin/busybox"


def test_whiteouts_overlay_and_naive(tmp_path: Path) -> None:
    layer = _layer(
        _ti("d", tarfile.DIRTYPE, mode=0o755), _ti("d/.wh..wh..opq"), _ti("d/new", data=b"n"),
        _ti(".wh.gone"),
    )
    ov = tmp_path / "ov"
    ov.mkdir()
    apply_layer(layer, ov, "overlay")
    st = os.lstat(ov / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(ov / "d", "trusted.overlay.opaque") == b"y"
    assert (ov / "d/new").read_bytes() == b"n"

    nv = tmp_path / "nv"
    (nv / "d").mkdir(parents=True)
    (nv / "d/old").write_text("o")
    (nv / "gone").write_text("g")
    (nv / "kept").write_text("k")
    layer.seek(0)
    apply_layer(layer, nv, "naive")
    assert sorted(os.listdir(nv)) == ["d", "kept"]
    assert os.listdir(nv / "d") == ["new"]


def test_device_nodes_and_xattrs_are_applied(tmp_path: Path) -> None:
    ti, _ = _ti("dev/null", tarfile.CHRTYPE, mode=0o666)
    ti.devmajor, ti.devminor = 1, 3
    f, data = _ti("bin/ping", data=b"\x7fELF", mode=0o755)
    f.pax_headers = {"SCHILY.xattr.user.test": "v", "SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    apply_layer(_layer((ti, None), (f, data)), tmp_path, "overlay")
    st = os.lstat(tmp_path / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert os.getxattr(tmp_path / "bin/ping", "user.test") == b"v"
    with pytest.raises(OSError):  # overlay's own attributes never come from a layer
        os.getxattr(tmp_path / "bin/ping", "trusted.overlay.redirect")


def test_tar_without_end_marker_is_accepted(tmp_path: Path) -> None:
    """Like Go's archive/tar (docker), a clean EOF at a header boundary ends the archive."""
    raw = _layer(_ti("f", data=b"x" * 512)).getvalue()
    apply_layer(io.BytesIO(raw[:1024]), tmp_path, "overlay")
    assert (tmp_path / "f").read_bytes() == b"x" * 512


def test_diff_id_is_of_the_uncompressed_stream(tmp_path: Path) -> None:
    raw = _layer(_ti("f", data=b"hello")).getvalue()
    a = apply_layer(io.BytesIO(gzip.compress(raw)), tmp_path, "overlay")
    import hashlib

    assert a.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert a.size == len(raw) and a.compression == "gzip"


@pytest.mark.parametrize(
    "bad", ["truncated-gzip", "truncated-tar", "truncated-header", "garbage-after-member", "garbage", "empty"]
)
def test_corrupt_layers_are_refused(tmp_path: Path, bad: str) -> None:
    raw = _layer(_ti("a", tarfile.DIRTYPE), _ti("big", data=os.urandom(100_000))).getvalue()
    data = {
        "truncated-gzip": gzip.compress(raw)[:5000],
        "truncated-tar": raw[:50_000],
        "truncated-header": gzip.compress(raw[:512 + 300]),
        "garbage-after-member": raw[:512] + b"\x01" * 1024,
        "garbage": b"this is not a tar file at all" * 100,
        "empty": b"",
    }[bad]
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(data), tmp_path, "overlay")


def test_compute_and_write_round_trip(tmp_path: Path) -> None:
    """A naive diff written as a tar and applied onto the old tree reproduces the new tree."""
    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        (d / "etc").mkdir(parents=True)
        (d / "etc/keep").write_text("k")
        os.utime(d / "etc/keep", (1, 1))
    (old / "etc/del").write_text("d")
    (old / "olddir/sub").mkdir(parents=True)
    (new / "etc/add").write_text("a")
    (new / "etc/keep").write_text("changed")
    os.link(new / "etc/add", new / "etc/add-hl")
    changes = naive_changes(new, old)
    kinds = {(c.path, c.kind) for c in changes}
    assert ("/etc/del", 2) in kinds and ("/olddir", 2) in kinds and ("/olddir/sub", 2) not in kinds
    assert ("/etc/add", 1) in kinds and ("/etc/keep", 0) in kinds
    buf = io.BytesIO()
    write_tar(buf, new, changes, include_parents=True)
    buf.seek(0)
    apply_layer(buf, old, "naive")
    assert sorted(os.listdir(old / "etc")) == ["add", "add-hl", "keep"]
    assert (old / "etc/keep").read_text() == "changed"
    assert os.stat(old / "etc/add").st_ino == os.stat(old / "etc/add-hl").st_ino
    assert not (old / "olddir").exists()


def test_overlay_changes_reads_whiteouts(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "d").mkdir(parents=True)
    (lower / "d/x").write_text("x")
    (lower / "f").write_text("f")
    (upper / "d").mkdir(parents=True)
    os.mknod(upper / "f", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "d/y").write_text("y")
    os.setxattr(upper / "d", "trusted.overlay.opaque", b"y")
    ch = overlay_changes(upper, [lower])
    assert [(c.path, c.kind, c.opaque) for c in ch] == [("/d", 0, True), ("/d/y", 1, False), ("/f", 2, False)]
    buf = io.BytesIO()
    write_tar(buf, upper, ch)
    buf.seek(0)
    assert tarfile.open(fileobj=buf).getnames() == ["d", "d/.wh..wh..opq", "d/y", ".wh.f"]
