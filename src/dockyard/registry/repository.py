"""Per-repository state: which blobs and manifests a repository holds, its tags and referrers.

All of it is small link files under ``repositories/<name>/`` (see ``layout.py``); the bytes live
in the shared ``BlobStore``. Every write is atomic (temp + rename); every link names a digest.

- ``link_layer``/``has_blob``/``unlink_layer``: the ``_layers`` links made on blob upload/mount.
- ``put_manifest``: checks that referenced blobs/manifests are present (MANIFEST_BLOB_UNKNOWN),
  stores the exact bytes as a blob, links the revision, tags it, records a referrer entry.
- ``delete_manifest`` removes the revision, the tags pointing at it and its referrer entry.
- ``catalog`` walks ``repositories/`` for directories holding ``_manifests`` or ``_layers``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest
from dockyard.registry.blobstore import BlobStore
from dockyard.registry.errcodes import (
    BlobUnknown,
    ManifestBlobUnknown,
    ManifestUnknown,
    NameUnknown,
)
from dockyard.registry.fsutil import atomic_write, prune_empty_parents, read_text, remove_tree_quiet
from dockyard.registry.layout import Layout
from dockyard.registry.manifest import OCI_MANIFEST, ParsedManifest, parse_manifest
from dockyard.registry.names import check_tag, is_digest_ref


def _read_link(path: Path) -> Digest | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return Digest.parse(text.strip())
    except InvalidArgument:
        return None


class Repositories:
    def __init__(self, layout: Layout, blobs: BlobStore) -> None:
        self.layout = layout
        self.blobs = blobs

    # -- repositories ----------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        r = self.layout.repo(name)
        return (r / "_manifests").is_dir() or (r / "_layers").is_dir()

    def require(self, name: str) -> None:
        if not self.exists(name):
            raise NameUnknown(f"repository {name} not known to registry", detail={"name": name})

    def catalog(self) -> list[str]:
        out: list[str] = []
        base = self.layout.repositories
        for dirpath, dirnames, _ in os.walk(base):
            if "_manifests" in dirnames or "_layers" in dirnames:
                out.append(os.path.relpath(dirpath, base))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(out)

    # -- blobs -----------------------------------------------------------------------------
    def link_layer(self, name: str, d: Digest) -> None:
        link = self.layout.layer_link(name, d)
        if read_text(link) != str(d):
            atomic_write(link, str(d).encode())

    def has_blob(self, name: str, d: Digest) -> int | None:
        """Size of blob ``d`` if this repository holds it (layer or manifest), else None."""
        if _read_link(self.layout.layer_link(name, d)) != d and not self.has_manifest(name, d):
            return None
        return self.blobs.size(d)

    def unlink_layer(self, name: str, d: Digest) -> None:
        link = self.layout.layer_link(name, d)
        if _read_link(link) != d or self.blobs.size(d) is None:
            raise BlobUnknown(f"blob {d} unknown to repository {name}", detail={"digest": str(d)})
        os.unlink(link)
        prune_empty_parents(link.parent, self.layout.repo(name) / "_layers")

    # -- manifests -------------------------------------------------------------------------
    def has_manifest(self, name: str, d: Digest) -> bool:
        return (_read_link(self.layout.revision_dir(name, d) / "link") == d
                and self.blobs.size(d) is not None)

    def resolve(self, name: str, ref: str) -> Digest:
        """Digest of the manifest named by tag or digest ``ref``."""
        if is_digest_ref(ref):
            d = Digest.parse(ref)
        else:
            check_tag(ref)
            d = _read_link(self.layout.tag_link(name, ref))
            if d is None:
                self.require(name)
                raise ManifestUnknown(f"manifest {name}:{ref} unknown", detail={"tag": ref})
        if not self.has_manifest(name, d):
            self.require(name)
            raise ManifestUnknown(f"manifest {name}@{d} unknown", detail={"digest": str(d)})
        return d

    def get_manifest(self, name: str, ref: str) -> tuple[bytes, str, Digest]:
        d = self.resolve(name, ref)
        body = self.blobs.read(d)
        if body is None:
            raise ManifestUnknown(f"manifest {name}@{d} unknown", detail={"digest": str(d)})
        mt = read_text(self.layout.revision_dir(name, d) / "mediatype")
        if not mt:
            try:
                mt = parse_manifest(body, None).media_type
            except InvalidArgument:
                mt = OCI_MANIFEST
        return body, mt, d

    def check_references(self, name: str, parsed: ParsedManifest) -> None:
        missing = [str(b.digest) for b in parsed.blobs if self.has_blob(name, b.digest) is None]
        missing += [str(c.digest) for c in parsed.children
                    if not self.has_manifest(name, c.digest)]
        if missing:
            raise ManifestBlobUnknown(
                f"manifest references {len(missing)} unknown blob(s)/manifest(s): "
                f"{', '.join(missing[:3])}", detail={"digests": missing})

    def put_manifest(self, name: str, body: bytes, d: Digest, parsed: ParsedManifest,
                     tags: Iterable[str], check: bool = True) -> None:
        """Store a manifest whose digest ``d`` the caller verified against ``body``."""
        if check:
            self.check_references(name, parsed)
        tags = [check_tag(t) for t in tags]
        self.blobs.put_bytes(body, d)
        rev = self.layout.revision_dir(name, d)
        atomic_write(rev / "mediatype", parsed.media_type.encode())
        atomic_write(rev / "link", str(d).encode())
        for tag in tags:
            atomic_write(self.layout.tag_link(name, tag), str(d).encode())
        if parsed.subject is not None:
            entry: dict[str, object] = {"mediaType": parsed.media_type, "digest": str(d),
                                        "size": len(body)}
            if parsed.artifact_type:
                entry["artifactType"] = parsed.artifact_type
            if parsed.annotations:
                entry["annotations"] = parsed.annotations
            path = self.layout.referrers(name, parsed.subject.digest) / f"{d.algorithm}-{d.hex}"
            atomic_write(path, json.dumps(entry).encode())

    def delete_manifest(self, name: str, d: Digest) -> None:
        if not self.has_manifest(name, d):
            self.require(name)
            raise ManifestUnknown(f"manifest {name}@{d} unknown", detail={"digest": str(d)})
        body = self.blobs.read(d) or b"{}"
        for tag in self.tags(name):
            if _read_link(self.layout.tag_link(name, tag)) == d:
                remove_tree_quiet(self.layout.tags(name) / tag)
        try:
            parsed = parse_manifest(body, None)
        except InvalidArgument:
            parsed = None
        if parsed is not None and parsed.subject is not None:
            ref_dir = self.layout.referrers(name, parsed.subject.digest)
            try:
                os.unlink(ref_dir / f"{d.algorithm}-{d.hex}")
            except FileNotFoundError:
                pass
            prune_empty_parents(ref_dir, self.layout.repo(name) / "_referrers")
        rev = self.layout.revision_dir(name, d)
        remove_tree_quiet(rev)
        prune_empty_parents(rev.parent, self.layout.revisions(name))

    def revisions(self, name: str) -> list[Digest]:
        out = []
        base = self.layout.revisions(name)
        for alg_dir in base.glob("*"):
            for hex_dir in alg_dir.iterdir():
                d = _read_link(hex_dir / "link")
                if d is not None:
                    out.append(d)
        return out

    # -- tags ------------------------------------------------------------------------------
    def tags(self, name: str) -> list[str]:
        base = self.layout.tags(name)
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        return sorted(t for t in names if (base / t / "current" / "link").exists())

    def tag_target(self, name: str, tag: str) -> Digest | None:
        return _read_link(self.layout.tag_link(name, tag))

    def delete_tag(self, name: str, tag: str) -> None:
        check_tag(tag)
        if self.tag_target(name, tag) is None:
            self.require(name)
            raise ManifestUnknown(f"tag {name}:{tag} unknown", detail={"tag": tag})
        remove_tree_quiet(self.layout.tags(name) / tag)

    # -- referrers -------------------------------------------------------------------------
    def referrers(self, name: str, subject: Digest) -> list[dict[str, object]]:
        base = self.layout.referrers(name, subject)
        out: list[dict[str, object]] = []
        try:
            entries = sorted(os.listdir(base))
        except FileNotFoundError:
            return out
        for e in entries:
            if e.startswith(".tmp-"):
                continue
            text = read_text(base / e)
            if text is None:
                continue
            desc = json.loads(text)
            if self.has_manifest(name, Digest.parse(desc["digest"])):
                out.append(desc)
        return out
