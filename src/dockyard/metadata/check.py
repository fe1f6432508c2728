"""A read-only consistency check of a daemon's data root (``dockyard system check``-like).

It reads the stores on disk, never the daemon, so it can judge a store right after a crash or
after the daemon's start-up reconciliation. What it looks at::

    <data-root>/
      containers/<id>/config.v2.json     every directory has a readable record
      image/metadata.db                  images(id, manifest_digest, layers JSON), refs(ref, image_id)
      image/content/blobs/sha256/<hex>   every blob an image names exists with its size; none unnamed
      image/content/ingest/              empty (partial writes)
      image/snapshots/<driver>/
        metadata.db                      snapshots(id, key, parent, kind)
        s/<id>/                          one directory per row, no directory without a row
      image/tmp/                         empty (export/overlay-probe mount points)
      volumes/<name>/volume.json         every directory has a record; no temp files

Invariants (each broken one is a :class:`Problem`):

* every image's config, manifest and layer blobs exist, and its layers are committed snapshots;
* every reference names an existing image;
* no blob and no committed snapshot is unreferenced (``gc`` at start removes them);
* every snapshot's parent exists; no ``extract-``/``build-`` snapshot survives a start;
* an active snapshot belongs to a container record (key = container id), and so does a
  ``<id>-init`` layer; every container (but one being removed) has its snapshot;
* no stray directories or temp files (``ingest/``, ``image/tmp``, record-less directories).

``check(data_root)`` returns the problems found (empty: consistent). ``strict=False`` skips the
"unreferenced" checks, for judging a store a crash just left (before the start-up gc ran).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from dockyard.oci.identity import chain_ids


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # short, stable: "missing-blob", "orphan-snapshot", ...
    subject: str  # what it is about: an image id, a snapshot key, a path
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


def _rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _listdir(p: Path) -> list[str]:
    try:
        return sorted(os.listdir(p))
    except FileNotFoundError:
        return []


def check(data_root: Path, *, strict: bool = True, verify_blobs: bool = False) -> list[Problem]:
    """Every inconsistency of the stores under ``data_root`` (see the module docstring).

    ``verify_blobs``: also hash every blob and compare with its name (reads the whole store)."""
    root = Path(data_root)
    out: list[Problem] = []
    containers = _check_containers(root, out)
    _check_images(root, containers, out, strict=strict)
    if verify_blobs:
        _verify_blobs(root / "image" / "content" / "blobs" / "sha256", out)
    _check_volumes(root, out)
    return out


def _check_containers(root: Path, out: list[Problem]) -> dict[str, dict]:
    recs: dict[str, dict] = {}
    cdir = root / "containers"
    for name in _listdir(cdir):
        f = cdir / name / "config.v2.json"
        try:
            rec = json.loads(f.read_text())
            recs[rec["id"]] = rec
        except FileNotFoundError:
            out.append(Problem("stray-container-dir", str(cdir / name), "no config.v2.json"))
        except (ValueError, KeyError, TypeError) as e:
            out.append(Problem("bad-container-record", str(f), str(e)))
        for tmp in _listdir(cdir / name):
            if tmp.startswith(".config.v2.json."):
                out.append(Problem("temp-file", str(cdir / name / tmp), "left by an interrupted write"))
    return recs


def _snapshot_root(root: Path) -> Path | None:
    for drv in ("overlay", "naive"):
        p = root / "image" / "snapshots" / drv
        if (p / "metadata.db").exists():
            return p
    return None


def _check_images(root: Path, containers: dict[str, dict], out: list[Problem], *, strict: bool) -> None:
    img = root / "image"
    images = _rows(img / "metadata.db", "SELECT id, manifest_digest, layers FROM images")
    refs = _rows(img / "metadata.db", "SELECT ref, image_id FROM refs")
    blobs_dir = img / "content" / "blobs" / "sha256"
    blobs = {"sha256:" + n: (blobs_dir / n).stat().st_size for n in _listdir(blobs_dir)}
    sroot = _snapshot_root(root)
    snaps = {r[1]: r for r in _rows(sroot / "metadata.db", "SELECT id, key, parent, kind FROM snapshots")} \
        if sroot else {}
    image_ids = {r[0] for r in images}
    used_blobs: set[str] = set()
    used_chains: set[str] = set()
    for iid, manifest, layers_json in images:
        layers = json.loads(layers_json)
        want = [(iid, "config"), (manifest, "manifest")] + [(x["digest"], "layer") for x in layers]
        for dgst, what in want:
            used_blobs.add(dgst)
            if dgst not in blobs:
                out.append(Problem("missing-blob", iid, f"its {what} blob {dgst} is missing"))
        for x in layers:
            if x["digest"] in blobs and x.get("size") not in (None, blobs[x["digest"]]):
                out.append(Problem("short-blob", iid, f"layer blob {x['digest']} has the wrong size"))
        for chain in chain_ids([x["diffID"] for x in layers]):
            used_chains.add(chain)
            s = snaps.get(chain)
            if s is None or s[3] != "committed":
                out.append(Problem("missing-layer", iid, f"layer {chain} is not a committed snapshot"))
    for ref, iid in refs:
        if iid not in image_ids:
            out.append(Problem("dangling-ref", ref, f"names the missing image {iid}"))
    if strict:
        for dgst in sorted(set(blobs) - used_blobs):
            out.append(Problem("orphan-blob", dgst, "no image references it"))
    for name in _listdir(img / "content" / "ingest"):
        out.append(Problem("stray-ingest", str(img / "content" / "ingest" / name), "a partial write"))
    for name in _listdir(img / "tmp"):
        out.append(Problem("stray-tmp", str(img / "tmp" / name), "left in image/tmp"))
    for cid, rec in containers.items():
        # a removal killed after the snapshot went leaves "removing" (read back as dead): rm ends it
        status = (rec.get("state") or {}).get("status")
        if cid not in snaps and status not in ("removing", "dead"):
            out.append(Problem("missing-rootfs", cid, "the container's snapshot is missing"))
    if sroot is None:
        return
    ids = {str(r[0]) for r in snaps.values()}
    for name in _listdir(sroot / "s"):
        if name not in ids:
            out.append(Problem("stray-snapshot-dir", str(sroot / "s" / name), "no snapshot row"))
    for key, (sid, _, parent, kind) in snaps.items():
        if not (sroot / "s" / str(sid)).is_dir():
            out.append(Problem("missing-snapshot-dir", key, f"s/{sid} is missing"))
        if parent is not None and parent not in snaps:
            out.append(Problem("missing-parent", key, f"parent {parent} is missing"))
        if key.startswith(("extract-", "build-")):
            out.append(Problem("orphan-snapshot", key, "a temporary snapshot survived"))
        elif kind == "active" and key not in containers:
            out.append(Problem("orphan-snapshot", key, "an active snapshot with no container"))
        elif kind == "committed" and key.endswith("-init"):
            if key[:-5] not in containers:
                out.append(Problem("orphan-snapshot", key, "an init layer with no container"))
        elif strict and kind == "committed" and key not in used_chains:
            children = [k for k, r in snaps.items() if r[2] == key]
            if not children:
                out.append(Problem("orphan-snapshot", key, "a layer no image references"))


def _verify_blobs(blobs: Path, out: list[Problem]) -> None:
    for name in _listdir(blobs):
        h = hashlib.sha256()
        with open(blobs / name, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != name:
            out.append(Problem("corrupt-blob", "sha256:" + name, f"its content hashes to sha256:{h.hexdigest()}"))


def _check_volumes(root: Path, out: list[Problem]) -> None:
    vdir = root / "volumes"
    for name in _listdir(vdir):
        d = vdir / name
        if not d.is_dir():
            continue
        if not (d / "volume.json").exists():
            out.append(Problem("stray-volume-dir", str(d), "no volume.json"))
        for f in _listdir(d):
            if f.startswith(".volume.json.") or f.startswith(".active.json."):
                out.append(Problem("temp-file", str(d / f), "left by an interrupted write"))
