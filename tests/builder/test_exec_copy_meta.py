"""COPY from a tar context: owner, mode (set-user-ID kept), mtime; new and existing targets."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.builder.context import TarContext
from dockyard.builder.steps.copy import copy_from_context

pytestmark = pytest.mark.root


def _ctx(tmp_path: Path) -> TarContext:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in [("d", None, 0o750), ("d/suid", b"#!x", 0o4755), ("d/f", b"new", 0o640)]:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            ti.mode = mode
            if data is None:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    work = tmp_path / "work"
    work.mkdir()
    return TarContext.load(io.BytesIO(buf.getvalue()), work)


@pytest.mark.parametrize("existing", [False, True])
def test_copy_keeps_mode_owner_mtime(tmp_path: Path, existing: bool) -> None:
    ctx = _ctx(tmp_path)
    root = tmp_path / "root"
    (root / "dst").mkdir(parents=True)
    if existing:  # an older file and a directory in the way are replaced
        (root / "dst" / "f").write_text("old")
        (root / "dst" / "suid").mkdir()
    try:
        copy_from_context(ctx, ["d"], root, "/dst/", owner=(1000, 1001), skip_rel=lambda r: False)
    finally:
        ctx.close()
    for name, mode, data in [("suid", 0o4755, b"#!x"), ("f", 0o640, b"new")]:
        st = os.lstat(root / "dst" / name)
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, 1000, 1001), name
        assert st.st_mtime == 1_600_000_000
        assert (root / "dst" / name).read_bytes() == data
