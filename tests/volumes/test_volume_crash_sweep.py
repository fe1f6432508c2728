"""A volume create or remove killed half-way must not block a later create of that name."""

from __future__ import annotations

from pathlib import Path

from dockyard.volumes.service import VolumeService


def test_record_less_volume_dirs_and_temp_files_are_swept(tmp_path: Path) -> None:
    root = tmp_path / "volumes"
    vols = VolumeService(root)
    vols.create("keep")
    (root / "keep" / ".volume.json.ab12").write_text("{")  # _write_json killed mid-write
    (root / "half" / "_data").mkdir(parents=True)  # create killed before its record
    (root / "half" / "_data" / "f").write_text("x")
    again = VolumeService(root)
    assert [v.name for v in again.list()] == ["keep"]
    assert not (root / "half").exists()
    assert not (root / "keep" / ".volume.json.ab12").exists()
    v = again.create("half")  # used to fail: mkdir of the left-over folder
    assert Path(v.mountpoint).is_dir() and not any(Path(v.mountpoint).iterdir())
