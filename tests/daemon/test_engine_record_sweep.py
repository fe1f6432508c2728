"""RecordStore.load_all at daemon start sweeps what a killed daemon left in containers/."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard.daemon.record import ContainerRecord, RecordStore


def _rec(cid: str) -> ContainerRecord:
    return ContainerRecord(id=cid, name="n", created="", image="busybox", image_id="sha256:" + "0" * 64,
                           config={}, host_config={}, path="true", args=[], runtime="runc")


def test_load_all_drops_record_less_dirs_and_temp_files(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.save(_rec("a" * 64))
    (store.dir("a" * 64) / ".config.v2.json.4242").write_text("{half")  # a save killed mid-write
    half = store.dir("b" * 64)  # a create killed before its first save
    half.mkdir()
    (half / "hostname").write_text("x\n")
    (store.root / "stray-file").write_text("")  # not a directory: ignored, not fatal
    recs = RecordStore(tmp_path).load_all()
    assert [r.id for r in recs] == ["a" * 64]
    assert not half.exists()
    assert not (store.dir("a" * 64) / ".config.v2.json.4242").exists()
    assert json.loads((store.dir("a" * 64) / "config.v2.json").read_text())["id"] == "a" * 64
