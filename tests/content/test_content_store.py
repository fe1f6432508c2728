from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from dockyard.content.store import ContentStore
from dockyard.errors import InvalidArgument, NotFound


def test_write_verify_commit(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    data = b"hello" * 1000
    dgst = "sha256:" + hashlib.sha256(data).hexdigest()
    with cs.writer() as w:
        w.copy_from(io.BytesIO(data))
        assert w.commit(expected_digest=dgst, expected_size=len(data)) == dgst
    assert cs.read(dgst) == data and cs.size(dgst) == len(data)
    assert list(cs.walk()) == [(dgst, len(data))]
    assert list((tmp_path / "ingest").iterdir()) == []


@pytest.mark.parametrize("what", ["digest", "size"])
def test_mismatch_is_refused_and_cleaned(tmp_path: Path, what: str) -> None:
    cs = ContentStore(tmp_path)
    with pytest.raises(InvalidArgument, match=f"{what} mismatch"):
        with cs.writer() as w:
            w.write(b"abc")
            if what == "digest":
                w.commit(expected_digest="sha256:" + "0" * 64)
            else:
                w.commit(expected_size=4)
    assert list(cs.walk()) == []
    assert list((tmp_path / "ingest").iterdir()) == []


def test_abandoned_writer_and_stale_ingest_are_removed(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    with pytest.raises(RuntimeError):
        with cs.writer() as w:
            w.write(b"partial")
            raise RuntimeError("client went away")
    assert list((tmp_path / "ingest").iterdir()) == []
    (tmp_path / "ingest" / "leftover").write_bytes(b"crash")
    ContentStore(tmp_path)
    assert list((tmp_path / "ingest").iterdir()) == []


def test_missing_and_bad_digests(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    with pytest.raises(NotFound):
        cs.read("sha256:" + "1" * 64)
    with pytest.raises(InvalidArgument):
        cs.path("sha256:../../etc/passwd")
    d = cs.put(b"x")
    assert cs.put(b"x") == d
    cs.delete(d)
    assert not cs.exists(d)
