"""Mark-and-sweep garbage collection of the blob store (``dockyard registry gc``).

Mark: every manifest revision of every repository (with ``delete_untagged``: only those
reachable from a tag through index entries, plus referrers of kept manifests; the other
revisions are deleted first) and every blob those manifests reference (config, layers, index
children, the manifest bytes themselves).

Sweep: delete unmarked blobs, except young ones. A push in progress uploads its blobs before its
manifest, so those blobs look unreferenced for a while: a blob is kept when it was written after
``now - grace`` or after the oldest still-open upload session started. Upload sessions are
separate files under ``_uploads`` and are never swept unless older than ``upload_max_age``
(abandoned). Layer links of deleted blobs are removed so repositories don't point at nothing.
Safe to run while the server serves; ``dry_run`` only reports.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest
from dockyard.registry.blobstore import BlobStore
from dockyard.registry.fsutil import prune_empty_parents, remove_tree_quiet
from dockyard.registry.layout import Layout
from dockyard.registry.manifest import parse_manifest
from dockyard.registry.repository import Repositories


@dataclass(frozen=True)
class GCResult:
    marked: frozenset[Digest]
    deleted_blobs: tuple[Digest, ...]
    deleted_manifests: tuple[tuple[str, Digest], ...]
    kept_young: tuple[Digest, ...]
    purged_uploads: tuple[str, ...]
    freed_bytes: int = field(default=0)


def _refs(repos: Repositories, d: Digest) -> tuple[list[Digest], list[Digest], Digest | None]:
    """(blobs, child manifests, subject) referenced by manifest ``d``; empty if unreadable."""
    body = repos.blobs.read(d)
    if body is None:
        return [], [], None
    try:
        pm = parse_manifest(body, None)
    except InvalidArgument:
        return [], [], None
    return ([b.digest for b in pm.blobs], [c.digest for c in pm.children],
            pm.subject.digest if pm.subject else None)


def _upload_sessions(layout: Layout, names: list[str]) -> list[tuple[str, Path, float]]:
    out = []
    for name in names:
        base = layout.uploads(name)
        if not base.is_dir():
            continue
        for d in base.iterdir():
            try:
                out.append((name, d, os.stat(d / "startedat").st_mtime))
            except FileNotFoundError:
                continue
    return out


def _all_repo_dirs(layout: Layout) -> list[str]:
    """Repositories, including ones that so far only have upload sessions."""
    out = []
    for dirpath, dirnames, _ in os.walk(layout.repositories):
        if any(d in dirnames for d in ("_manifests", "_layers", "_uploads")):
            out.append(os.path.relpath(dirpath, layout.repositories))
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
    return out


def collect(root: Path, dry_run: bool = False, delete_untagged: bool = False,
            grace_seconds: float = 3600, upload_max_age: float = 7 * 86400,
            now: float | None = None) -> GCResult:
    now = time.time() if now is None else now
    layout = Layout(root)
    blobs = BlobStore(layout)
    repos = Repositories(layout, blobs)
    names = _all_repo_dirs(layout)
    marked: set[Digest] = set()
    deleted_manifests: list[tuple[str, Digest]] = []

    for name in names:
        revisions = repos.revisions(name)
        keep = set(revisions)
        if delete_untagged:
            keep = {t for t in (repos.tag_target(name, tag) for tag in repos.tags(name)) if t}
            subjects = {r: _refs(repos, r)[2] for r in revisions}
            changed = True
            while changed:  # closure over index children and referrers of kept manifests
                changed = False
                for r in list(keep):
                    for c in _refs(repos, r)[1]:
                        if c not in keep:
                            keep.add(c)
                            changed = True
                for r, subj in subjects.items():
                    if subj in keep and r not in keep:
                        keep.add(r)
                        changed = True
            for r in revisions:
                if r not in keep:
                    deleted_manifests.append((name, r))
                    if not dry_run:
                        repos.delete_manifest(name, r)
        for r in keep:
            marked.add(r)
            bl, children, _ = _refs(repos, r)
            marked.update(bl)
            marked.update(children)

    purged: list[str] = []
    cutoff = now - grace_seconds
    for name, d, started in _upload_sessions(layout, names):
        if started < now - upload_max_age:
            purged.append(f"{name}/{d.name}")
            if not dry_run:
                remove_tree_quiet(d)
        else:
            cutoff = min(cutoff, started)

    deleted: list[Digest] = []
    young: list[Digest] = []
    freed = 0
    for d, path in list(blobs.all()):
        if d in marked:
            continue
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_mtime >= cutoff:
            young.append(d)
            continue
        deleted.append(d)
        freed += st.st_size
        if not dry_run:
            blobs.delete(d)
    if not dry_run and deleted:
        gone = set(deleted)
        for name in names:
            base = layout.repo(name) / "_layers"
            for alg_dir in base.glob("*"):
                for hex_dir in alg_dir.iterdir():
                    try:
                        dg = Digest.parse(f"{alg_dir.name}:{hex_dir.name}")
                    except InvalidArgument:
                        continue
                    if dg in gone:
                        remove_tree_quiet(hex_dir)
                prune_empty_parents(alg_dir, base)
    return GCResult(frozenset(marked), tuple(deleted), tuple(deleted_manifests), tuple(young),
                    tuple(purged), freed)


def report(res: GCResult, dry_run: bool) -> str:
    verb = "would delete" if dry_run else "deleted"
    lines = [f"{len(res.marked)} blobs marked"]
    lines += [f"{verb} manifest {n}@{d}" for n, d in res.deleted_manifests]
    lines += [f"{verb} blob {d}" for d in res.deleted_blobs]
    lines += [f"kept young blob {d}" for d in res.kept_young]
    lines += [f"{verb} stale upload {u}" for u in res.purged_uploads]
    lines.append(f"{verb} {len(res.deleted_blobs)} blobs, {res.freed_bytes} bytes")
    return "\n".join(lines)


