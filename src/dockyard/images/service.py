"""The local image store: what dockyardd calls for images and container root filesystems.

On disk (``root`` is the daemon's ``<data-root>/image``, or whatever the caller passes)::

    root/
      metadata.db                    images + references (images/records.py), SQLite WAL
      content/blobs/sha256/<hex>     configs, manifests, layer blobs (content/store.py)
      content/ingest/                partial writes, swept on start
      snapshots/<overlay|naive>/     unpacked layers keyed by ChainID, container snapshots
                                     keyed by the caller's key (snapshots/snapshotter.py)

Write order, so that a crash at any point leaves a consistent store: blobs (content addressed,
verified, renamed into place) -> unpacked layers (extracted into a fresh snapshot, committed
under the ChainID only when complete) -> one SQLite transaction with the image row and its
references (a consumed build snapshot: blob, then the snapshot row renamed to the ChainID and
re-parented in one SQLite transaction, then the image). Stray blobs and layers of a crash are
unreferenced but harmless (``gc`` at start removes them); no image is ever half visible.

Thread safety: the daemon calls from executor threads. Metadata is guarded by SQLite
transactions under a lock; unpacking the same ChainID twice concurrently is harmless (the
second commit loses and is removed).

The API, by caller:

* engine: ``import_tarball``, ``resolve``, ``get``, ``list``, ``tag``, ``remove``, ``prune``,
  ``history``, ``disk_usage``, ``load``, ``save``; container root filesystems:
  ``prepare_rootfs(image_id, key)`` -> mounts of a writable snapshot, ``mount_rootfs(key,
  target)`` / ``unmount_rootfs(target)``, ``remove_rootfs(key)``, ``rootfs_usage(key)``;
  ``changes(key)``, ``commit(key, ...)``, ``export_rootfs(key, out, mounted=)`` read it.
* builder: ``prepare_rootfs(None, key)`` (FROM scratch), ``commit(..., created_by=,
  consume=True)`` for steps with a layer (the step's overlay upper directory becomes the layer
  in place; its blob, an uncompressed tar whose digest is the DiffID, is written in the same
  pass), ``derive(...)`` for metadata-only steps, ``children(id)`` for the cache,
  ``image_mounts(id)`` for a quick read-only look at an image.
* registry client: pull = ``unpack_stream(stream, diff_id=, parent_chain=, verify=)``
  per layer while the caller stores the same bytes (``drop_unpacked(chain)`` after a failure),
  or ``has_layer``/``ingest_layer(...)`` (stored and unpacked in one verified pass), then
  ``add_image(manifest_digest, repo_tags=, repo_digests=)``; push = ``manifest(image_id)`` and
  ``content.open(digest)``, then ``set_repo_digest(image_id, "name@sha256:...")``;
  ``images.platforms.select_manifest`` picks from an index.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.content.store import ContentStore
from dockyard.diff import compute
from dockyard.diff.apply import apply_layer
from dockyard.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from dockyard.images import initlayer
from dockyard.images.changes import apply_changes
from dockyard.images.model import Change, DiskUsage, HistoryEntry, Image, ImageUsage, Layer
from dockyard.images.platforms import host_platform, parse_platform
from dockyard.images.records import Record, Records
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference
from dockyard.oci.descriptor import Descriptor
from dockyard.oci.identity import chain_ids, chain_on, config_diff_ids
from dockyard.snapshots.mount import Mount, mount_all, unmount_all
from dockyard.snapshots.naive import NaiveSnapshotter
from dockyard.snapshots.overlay import OverlaySnapshotter, overlay_supported
from dockyard.snapshots.snapshotter import Snapshotter, force_rmtree
from dockyard.snapshots.storage import Kind

_ID_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")
_CONTAINER_KEY = re.compile(r"[0-9a-f]{64}")


def now_rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def rfc3339_to_epoch(s: str) -> int:
    if not s:
        return 0
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        return 0
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return int(datetime.fromisoformat(m.group(1) + tz).timestamp())


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class ImageService:
    def __init__(self, root: Path, *, snapshotter: str = "auto") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.content = ContentStore(self.root / "content")
        self.records = Records(self.root / "metadata.db")
        if snapshotter == "auto":
            snapshotter = "overlay" if overlay_supported(self.root / "tmp") else "naive"
        if snapshotter == "overlay":
            self.snapshots: Snapshotter = OverlaySnapshotter(self.root / "snapshots" / "overlay")
        elif snapshotter == "naive":
            self.snapshots = NaiveSnapshotter(self.root / "snapshots" / "naive")
        else:
            raise InvalidArgument(f"unknown snapshotter {snapshotter!r}")
        self._clean_tmp()
        self._lock = threading.RLock()
        self._configs: dict[str, dict[str, Any]] = {}
        self._sizes: dict[str, int] = {}  # DiffID -> content size of layers unpacked by this process
        self._sweep_extractions()
        self.gc()

    def _clean_tmp(self) -> None:
        """Empty ``tmp/`` (export mounts a killed daemon left mounted, overlay checks)."""
        tmp = self.root / "tmp"
        tmp.mkdir(exist_ok=True)
        for e in os.scandir(tmp):
            p = Path(e.path)
            try:
                unmount_all(p)
            except Exception:  # noqa: BLE001 - left for the next start; never fatal
                continue
            force_rmtree(p)

    def close(self) -> None:
        self.records.close()
        self.snapshots.close()

    # ------------------------------------------------------------------ lookup

    def _lookup(self, ref: str) -> tuple[str, str | None]:
        """(image id, the full reference it matched or None when matched by id)."""
        if not isinstance(ref, str) or not ref:
            raise NotFound("No such image: ")
        m = _ID_RE.match(ref)
        if m and (len(m.group(1)) == 64 or ref.startswith("sha256:")):
            return self._by_id_prefix(m.group(1), ref), None
        try:
            parsed = reference.parse(ref)
        except InvalidArgument:
            if m:
                return self._by_id_prefix(m.group(1), ref), None
            raise
        if parsed.digest is not None:
            iid = self.records.lookup_ref(str(parsed.name_only().with_digest(parsed.digest)))
            if iid is None:
                # name@<manifest or config digest> of an image tagged in that repository.
                for r, image_id, _ in self.records.all_refs():
                    if r.startswith(parsed.name + ":") or r.startswith(parsed.name + "@"):
                        rec = self.records.find(image_id)
                        if rec and parsed.digest in (rec.manifest_digest, rec.id):
                            iid = image_id
                            break
            if iid is None:
                raise NotFound(f"No such image: {parsed.familiar()}")
            return iid, str(parsed.name_only().with_digest(parsed.digest))
        full = parsed if parsed.tag is not None else parsed.with_tag(reference.DEFAULT_TAG)
        iid = self.records.lookup_ref(str(full))
        if iid is not None:
            return iid, str(full)
        if m and parsed.tag is None:
            try:
                return self._by_id_prefix(m.group(1), ref), None
            except NotFound:
                pass
        raise NotFound(f"No such image: {full.familiar()}")

    def _by_id_prefix(self, hex_prefix: str, ref: str) -> str:
        ids = self.records.ids_with_prefix(hex_prefix)
        if len(ids) != 1:
            # Docker reports an ambiguous prefix as not found too.
            raise NotFound(f"No such image: {ref}")
        return ids[0]

    def resolve(self, ref: str) -> str:
        """Image id (``sha256:<hex>``) for a name[:tag], name@digest, or full/short id."""
        return self._lookup(ref)[0]

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
            return True
        except (NotFound, InvalidArgument):
            return False

    def config_of(self, image_id: str) -> dict[str, Any]:
        cfg = self._configs.get(image_id)
        if cfg is None:
            cfg = json.loads(self.content.read(image_id))
            self._configs[image_id] = cfg
        return cfg

    def _image(self, rec: Record) -> Image:
        cfg = self.config_of(rec.id)
        tags, digests = [], []
        for r, kind in self.records.refs_of(rec.id):
            (tags if kind == "tag" else digests).append(reference.familiar(r))
        diff_ids = tuple((cfg.get("rootfs") or {}).get("diff_ids") or ())
        return Image(
            id=rec.id, repo_tags=tuple(tags), repo_digests=tuple(digests), config=cfg,
            created=str(cfg.get("created") or ""), size=sum(x.unpacked_size for x in rec.layers),
            parent=rec.parent, layers=tuple(chain_ids(diff_ids)), diff_ids=diff_ids,
            layer_blobs=rec.layers, manifest_digest=rec.manifest_digest, added=rec.added,
        )

    def get(self, ref: str) -> Image:
        return self._image(self.records.get(self.resolve(ref)))

    def list(self) -> list[Image]:
        """All images, newest first (as ``docker images`` sorts)."""
        imgs = [self._image(r) for r in self.records.all()]
        imgs.sort(key=lambda i: (rfc3339_to_epoch(i.created), i.added), reverse=True)
        return imgs

    def manifest(self, image_id: str) -> tuple[bytes, str]:
        """The stored manifest of an image (bytes, media type): what a push sends."""
        rec = self.records.get(image_id)
        data = self.content.read(rec.manifest_digest)
        return data, json.loads(data).get("mediaType") or mt.OCI_MANIFEST

    # ------------------------------------------------------------------ creating images

    def _sweep_extractions(self) -> None:
        """Remove extraction snapshots a crash left behind (never committed, never referenced)."""
        for info in self.snapshots.list():
            if info.key.startswith("extract-"):
                try:
                    self.snapshots.remove(info.key)
                except Exception:  # noqa: BLE001 - best effort; retried on the next start
                    pass

    def gc(self) -> dict[str, int]:
        """Remove unpacked layers and blobs that no image references; run at start.

        That is what a crash between "blob written / layer unpacked" and "image recorded"
        leaves. Not safe while another thread is creating an image (its blobs are not yet
        referenced): the constructor runs it before anyone else can. Container snapshots
        (active) are never touched; their parents are kept by the snapshot tree."""
        with self._lock:
            recs = self.records.all()
            used_blobs: set[str] = set()
            used_chains: set[str] = set()
            for r in recs:
                used_blobs.update({r.id, r.manifest_digest, *(x.digest for x in r.layers)})
                used_chains.update(chain_ids([x.diff_id for x in r.layers]))
            layers = blobs = 0
            progress = True
            while progress:  # leaves first: a layer with children can't go before them
                progress = False
                for info in self.snapshots.list():
                    if info.kind is Kind.COMMITTED and info.key not in used_chains:
                        try:
                            self.snapshots.remove(info.key)
                        except Conflict:
                            continue
                        layers += 1
                        progress = True
            for digest, _ in list(self.content.walk()):
                if digest not in used_blobs:
                    self.content.delete(digest)
                    blobs += 1
            return {"layers": layers, "blobs": blobs}

    def _commit_layer(self, key: str, chain: str) -> None:
        """Commit the extraction ``key`` as ``chain``, or drop it if another thread won."""
        try:
            self.snapshots.commit(chain, key)
        except AlreadyExists:
            self.snapshots.remove(key)

    @contextlib.contextmanager
    def _extracting(self, parent: str | None) -> Iterator[str]:
        """A fresh ``extract-*`` snapshot on ``parent`` for the block to unpack into and commit
        (``_commit_layer``); removed again if the block raises, whatever it got to."""
        key = f"extract-{secrets.token_hex(8)}"
        self.snapshots.prepare(key, parent)
        try:
            yield key
        except BaseException:
            if self.snapshots.exists(key):
                self.snapshots.remove(key)
            raise

    def _unpack(self, layers: list[Layer]) -> dict[str, int]:
        """Make sure every ChainID of ``layers`` is unpacked, verifying each DiffID.

        Returns the uncompressed size of each layer unpacked now, by DiffID."""
        chains = chain_ids([x.diff_id for x in layers])
        parent: str | None = None
        sizes: dict[str, int] = {}
        for layer, chain in zip(layers, chains, strict=True):
            if not self.snapshots.exists(chain):
                with self._extracting(parent) as key:
                    with self.content.open(layer.digest) as f:
                        applied = apply_layer(f, self.snapshots.writable_dir(key), self.snapshots.apply_mode)
                    if applied.diff_id != layer.diff_id:
                        raise InvalidArgument(
                            f"layer {layer.digest}: uncompressed digest {applied.diff_id} does not "
                            f"match the config's diff_id {layer.diff_id}"
                        )
                    self._commit_layer(key, chain)
                sizes[layer.diff_id] = applied.content_size
            parent = chain
        return sizes

    def _ingest_and_unpack(
        self,
        src: BinaryIO,
        parent_chain: str | None,
        *,
        expect_digest: str | None = None,
        expect_size: int | None = None,
        expect_diff_id: str | None = None,
    ) -> Layer:
        """Store a layer blob and unpack it on ``parent_chain`` in one pass."""
        with self._extracting(parent_chain) as key:
            with self.content.writer(hashed=False) as w:
                applied = apply_layer(
                    src, self.snapshots.writable_dir(key), self.snapshots.apply_mode, blob=w
                )
                if expect_digest is not None and applied.sink_compression != applied.compression:
                    raise InvalidArgument(
                        f"layer {expect_digest}: {applied.compression} compression is not a layer media type"
                    )
                if expect_digest is not None and applied.sink_digest != expect_digest:
                    raise InvalidArgument(
                        f"layer digest mismatch: expected {expect_digest}, got {applied.sink_digest}"
                    )
                if expect_diff_id is not None and applied.diff_id != expect_diff_id:
                    raise InvalidArgument(
                        f"layer {applied.sink_digest}: uncompressed digest {applied.diff_id} does not "
                        f"match the config's diff_id {expect_diff_id}"
                    )
                blob = w.commit(expected_digest=applied.sink_digest, expected_size=expect_size)
            chain = chain_on(parent_chain, applied.diff_id)
            self._commit_layer(key, chain)
        self._sizes[applied.diff_id] = applied.content_size
        return Layer(
            mt.layer_type_for(applied.sink_compression), blob, w.size, applied.diff_id, applied.content_size
        )

    def has_layer(self, digest: str, diff_id: str, parent_chain: str | None) -> bool:
        """Is this layer blob stored and unpacked on ``parent_chain``? (a pull skips it then)"""
        chain = chain_on(parent_chain, diff_id)
        return self.content.exists(digest) and self.snapshots.exists(chain)

    def ingest_layer(
        self,
        src: BinaryIO,
        *,
        digest: str,
        size: int | None,
        diff_id: str,
        parent_chain: str | None,
    ) -> Layer:
        """Store and unpack a pulled layer in one pass, verifying digest, size and DiffID.

        ``parent_chain``: the ChainID of the layers below (None for the first); returns the
        layer, whose ChainID is ``chain_ids([parent_chain, diff_id])[-1]``. Then
        :meth:`add_image` records the image without unpacking again. Nothing is kept on error."""
        return self._ingest_and_unpack(
            src, parent_chain, expect_digest=digest, expect_size=size, expect_diff_id=diff_id
        )

    def unpack_layer(
        self, src: BinaryIO, parent_chain: str | None, *, digest: str | None = None, size: int | None = None
    ) -> Layer:
        """Store a layer blob and unpack it on ``parent_chain`` in one pass, before knowing which
        image it belongs to (``load`` of an archive whose layers come before their config).

        The snapshot is committed under the ChainID of what was really extracted
        (``chain_ids([parent_chain, layer.diff_id])[-1]``), so a wrong guess of the parent is
        harmless: that ChainID is simply not the one an image asks for, and the caller removes
        it. ``digest``/``size``, when known (an OCI blob's name), are verified; the input must
        be uncompressed, gzip or zstd (what a layer blob may be)."""
        return self._ingest_and_unpack(src, parent_chain, expect_digest=digest, expect_size=size)

    def unpack_stream(
        self, src: BinaryIO, *, diff_id: str, parent_chain: str | None, verify: Callable[[], None],
        name: str = "layer",
    ) -> bool:
        """Unpack a layer blob read from ``src`` on ``parent_chain`` WITHOUT storing it (a pull
        stores and hashes the same bytes itself while they are extracted: distribution/pull.py).

        ``src`` is read to its end, then ``verify()`` (the caller's check of the blob's digest
        and size; it raises to refuse) and the DiffID are checked before the snapshot is
        committed under ``chain_ids([parent_chain, diff_id])[-1]``, so a lying source leaves no
        layer. ``verify()`` is called first when the stream is not a valid layer too, so that
        garbage from a lying registry reads as a digest mismatch, not a bad tar. Returns False
        (``src`` unread, ``verify`` not called) when that ChainID is already unpacked, True when
        it was unpacked now (``name``, e.g. ``layer sha256:...``, is what errors call it). Then :meth:`add_image` records the image without unpacking again;
        after a failure, :meth:`drop_unpacked` removes what was committed."""
        chain = chain_on(parent_chain, diff_id)
        if self.snapshots.exists(chain):
            return False
        with self._extracting(parent_chain) as key:
            try:
                applied = apply_layer(src, self.snapshots.writable_dir(key), self.snapshots.apply_mode)
            except InvalidArgument:
                verify()
                raise
            verify()
            if applied.compression not in ("none", "gzip", "zstd"):
                raise InvalidArgument(f"{name}: {applied.compression} compression is not a layer media type")
            if applied.diff_id != diff_id:
                raise InvalidArgument(
                    f"{name}: uncompressed digest {applied.diff_id} does not match the config's diff_id {diff_id}"
                )
            self._commit_layer(key, chain)
        self._sizes[applied.diff_id] = applied.content_size
        return True

    def drop_unpacked(self, chain: str) -> bool:
        """Remove the unpacked layer ``chain`` unless an image uses it or a snapshot sits on it
        (a failed pull undoing :meth:`unpack_stream`). Returns whether it was removed."""
        with self._lock:
            for r in self.records.all():
                if chain in chain_ids([x.diff_id for x in r.layers]):
                    return False
            try:
                self.snapshots.remove(chain)
            except (Conflict, NotFound):
                return False
            return True

    def _register(
        self,
        config: dict[str, Any] | bytes,
        layers: list[Layer],
        *,
        tags: Iterable[str] = (),
        digests: Iterable[str] = (),
        parent: str = "",
        manifest: bytes | None = None,
    ) -> str:
        """Store config + manifest blobs and record the image and its references atomically."""
        cfg_bytes = config if isinstance(config, bytes) else canonical_json(config)
        # One filesystem sync for both blobs, before the row that makes them reachable (a crash
        # before it leaves unreferenced blobs, which gc sweeps at start).
        with self.content.batch() as batch:
            image_id = batch.put(cfg_bytes)
            if manifest is None:
                manifest = canonical_json(
                    {
                        "schemaVersion": 2,
                        "mediaType": mt.OCI_MANIFEST,
                        "config": {"mediaType": mt.OCI_CONFIG, "digest": image_id, "size": len(cfg_bytes)},
                        "layers": [{"mediaType": x.media_type, "digest": x.digest, "size": x.size}
                                   for x in layers],
                    }
                )
            manifest_digest = batch.put(manifest)
        with self._lock, self.records.db.tx() as db:
            existing = self.records.find(image_id)
            if existing is None:
                self.records.insert(db, Record(image_id, manifest_digest, parent, time.time(), tuple(layers)))
            for t in tags:
                self.records.set_ref(db, t, image_id, "tag")
            for d in digests:
                self.records.set_ref(db, d, image_id, "digest")
        return image_id

    def import_tarball(
        self,
        stream: BinaryIO,
        *,
        repo_tag: str | None = None,
        changes: Iterable[str] = (),
        message: str = "",
        platform: str | None = None,
        source: str = "-",
    ) -> str:
        """``docker import``: a (compressed) rootfs tar -> a one-layer image; returns its id."""
        # Validate everything before reading a byte, so bad input leaves nothing behind.
        tag = str(reference.parse_normalized(repo_tag)) if repo_tag else None
        if tag and "@" in tag:
            raise InvalidArgument(f"invalid reference format: {repo_tag!r}: a digest can not be imported")
        cfg = apply_changes(None, list(changes))
        os_, arch, variant = parse_platform(platform)
        layer = self._ingest_and_unpack(stream, None)
        created = now_rfc3339()
        config: dict[str, Any] = {"architecture": arch}
        if message:
            config["comment"] = message
        config.update({"config": cfg, "created": created})
        config["history"] = [{"created": created, "comment": message or f"Imported from {source}"}]
        config["os"] = os_
        config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id]}
        if variant:
            config["variant"] = variant
        return self._register(config, [layer], tags=[tag] if tag else [])

    def ingest_blob(self, src: BinaryIO, digest: str, size: int | None = None) -> str:
        """Store a blob (a pulled layer, config or manifest), verifying digest and size.

        A blob already present is not read again."""
        if self.content.exists(digest):
            return digest
        with self.content.writer() as w:
            w.copy_from(src)
            return w.commit(expected_digest=digest, expected_size=size)

    def add_image(
        self,
        manifest_digest: str,
        *,
        repo_tags: Iterable[str] = (),
        repo_digests: Iterable[str] = (),
        parent: str = "",
    ) -> str:
        """Record an image whose manifest, config and layer blobs are already in ``content``.

        For the registry client (pull) and ``load``: unpacks the layers (verifying DiffIDs),
        then records it. ``repo_tags``/``repo_digests`` are references in any form docker
        accepts; they are normalised here."""
        # References first: bad input must fail before any layer is unpacked.
        tags = [str(reference.parse_normalized(t)) for t in repo_tags]
        digests = []
        for r in repo_digests:
            p = reference.parse(r)
            digests.append(str(p.name_only().with_digest(p.digest or manifest_digest)))
        man_bytes = self.content.read(manifest_digest)
        man = _json_object(man_bytes, f"manifest {manifest_digest}")
        if man.get("mediaType") in mt.INDEX_TYPES or "manifests" in man:
            raise InvalidArgument(f"manifest {manifest_digest} is an index, not an image manifest")
        cfg_desc = Descriptor.from_dict(man.get("config"), where=f"manifest {manifest_digest}: config")
        try:
            cfg_bytes = self.content.read(cfg_desc.digest)
        except NotFound:
            raise InvalidArgument(f"image config {cfg_desc.digest} is missing") from None
        cfg = _json_object(cfg_bytes, f"image config {cfg_desc.digest}")
        descs = man.get("layers") or []
        diff_ids = config_diff_ids(cfg, cfg_desc.digest, len(descs) if isinstance(descs, list) else None)
        layers: list[Layer] = []
        for i, (d, diff_id) in enumerate(zip(descs, diff_ids, strict=True)):
            desc = Descriptor.from_dict(d, where=f"manifest {manifest_digest}: layer {i}")
            try:
                size = self.content.size(desc.digest)
            except NotFound:
                raise InvalidArgument(f"layer {i}: blob {desc.digest} is missing") from None
            if desc.size != size:
                raise InvalidArgument(f"layer {i} ({desc.digest}): size {desc.size} but the blob has {size} bytes")
            layers.append(Layer(desc.media_type or mt.OCI_LAYER, desc.digest, size, diff_id, 0))
        layers = self._with_unpacked_sizes(layers)
        return self._register(cfg_bytes, layers, tags=tags, digests=digests, parent=parent, manifest=man_bytes)

    def _with_unpacked_sizes(self, layers: list[Layer]) -> list[Layer]:
        """Unpack (if needed) and fill in each layer's uncompressed size."""
        sizes = self._unpack(layers)
        return [
            Layer(x.media_type, x.digest, x.size, x.diff_id,
                  sizes.get(x.diff_id) or self._known_unpacked_size(x.diff_id))
            for x in layers
        ]

    def _known_unpacked_size(self, diff_id: str) -> int:
        if diff_id in self._sizes:
            return self._sizes[diff_id]
        for rec in self.records.all():
            for x in rec.layers:
                if x.diff_id == diff_id:
                    return x.unpacked_size
        return 0

    # ------------------------------------------------------------------ tags and removal

    def tag(self, src_ref: str, repo: str, tag: str | None = None) -> str:
        """Point ``repo:tag`` at the image ``src_ref`` names; returns the familiar new reference."""
        image_id = self.resolve(src_ref)
        parsed = reference.parse(repo)
        if parsed.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        if tag:
            parsed = parsed.with_tag(tag)
        elif parsed.tag is None:
            parsed = parsed.with_tag(reference.DEFAULT_TAG)
        with self._lock, self.records.db.tx() as db:
            self.records.set_ref(db, str(parsed), image_id, "tag")
        return parsed.familiar()

    def set_repo_digest(self, image_id: str, ref: str) -> str:
        """Record ``name@sha256:...`` (after a push or pull) for RepoDigests; returns it familiar."""
        parsed = reference.parse(ref)
        if parsed.digest is None:
            raise InvalidArgument(f"{ref!r} is not a digest reference")
        self.records.get(image_id)
        full = str(parsed.name_only().with_digest(parsed.digest))
        with self._lock, self.records.db.tx() as db:
            self.records.set_ref(db, full, image_id, "digest")
        return parsed.familiar()

    def children(self, image_id: str) -> list[str]:
        """Images whose parent is ``image_id`` (the classic builder's cache walks these)."""
        return self.records.children(image_id)

    def derive(
        self,
        parent_image_id: str | None,
        *,
        config: dict[str, Any],
        created_by: str = "",
        comment: str = "",
        repo_tag: str | None = None,
    ) -> str:
        """A new image with the parent's layers and a new container ``config`` (no new layer).

        For metadata-only build steps (ENV, CMD, LABEL...): the history gets an
        ``empty_layer`` entry, the parent link is kept. Returns the new image id."""
        tag = str(reference.parse_normalized(repo_tag)) if repo_tag else None
        parent = self.get(parent_image_id) if parent_image_id else None
        pcfg = parent.config if parent else {}
        os_, arch, variant = host_platform()
        created = now_rfc3339()
        new: dict[str, Any] = {"architecture": pcfg.get("architecture") or arch}
        if comment:
            new["comment"] = comment
        new["config"] = config
        new["created"] = created
        h: dict[str, Any] = {"created": created}
        if created_by:
            h["created_by"] = created_by
        if comment:
            h["comment"] = comment
        h["empty_layer"] = True
        new["history"] = list(pcfg.get("history") or []) + [h]
        new["os"] = pcfg.get("os") or os_
        new["rootfs"] = {"type": "layers", "diff_ids": list((pcfg.get("rootfs") or {}).get("diff_ids") or [])}
        if pcfg.get("variant") or (variant and not parent):
            new["variant"] = pcfg.get("variant") or variant
        return self._register(
            new, list(parent.layer_blobs if parent else ()), tags=[tag] if tag else [],
            parent=parent.id if parent else "",
        )

    def untag(self, ref: str) -> None:
        parsed = reference.parse_normalized(ref)
        with self._lock, self.records.db.tx() as db:
            if self.records.lookup_ref(str(parsed)) is None:
                raise NotFound(f"No such image: {parsed.familiar()}")
            self.records.delete_ref(db, str(parsed))

    def remove(
        self, ref: str, *, force: bool = False, noprune: bool = False, keep: Collection[str] = ()
    ) -> list[dict[str, str]]:
        """``docker rmi``: ``[{"Untagged": ...}, {"Deleted": ...}]``.

        By name: untag; delete the image when that was its last reference. By id: refused
        (Conflict) when the image is referenced in several repositories unless ``force``;
        otherwise untag everything and delete. An image with child images is never deleted.
        Container use of ``ref`` itself is checked by the caller before calling; ``keep`` (ids
        of images containers use) stops the pruning of untagged parents."""
        with self._lock:
            image_id, matched = self._lookup(ref)
            out: list[dict[str, str]] = []
            refs = self.records.refs_of(image_id)
            if matched is not None:
                parsed = reference.parse(matched)
                with self.records.db.tx() as db:
                    self.records.delete_ref(db, matched)
                    out.append({"Untagged": parsed.familiar()})
                    remaining = [r for r, _ in refs if r != matched]
                    # A tag removed leaving only digest references of the same repository:
                    # those go too (docker does the same).
                    same_repo = [r for r in remaining if reference.parse(r).name == parsed.name]
                    if same_repo and all("@" in r for r in same_repo):
                        for r in same_repo:
                            self.records.delete_ref(db, r)
                            out.append({"Untagged": reference.familiar(r)})
                if self.records.refs_of(image_id):
                    return out
                quiet = True
            else:
                repos = {reference.parse(r).name for r, _ in refs}
                if len(repos) > 1 and not force:
                    raise Conflict(
                        f"conflict: unable to delete {image_id.split(':')[1][:12]} (must be forced) - "
                        "image is referenced in multiple repositories"
                    )
                quiet = False
                if self.records.children(image_id):
                    raise Conflict(
                        f"conflict: unable to delete {image_id.split(':')[1][:12]} (cannot be forced) - "
                        "image has dependent child images"
                    )
                with self.records.db.tx() as db:
                    for r, _ in refs:
                        self.records.delete_ref(db, r)
                        out.append({"Untagged": reference.familiar(r)})
            if self.records.children(image_id):
                if quiet:
                    return out
                raise Conflict(
                    f"conflict: unable to delete {image_id.split(':')[1][:12]} (cannot be forced) - "
                    "image has dependent child images"
                )
            out.extend(self._delete_chain(image_id, prune_parents=not noprune, keep=keep))
            return out

    def _delete_chain(
        self, image_id: str, *, prune_parents: bool, keep: Collection[str] = ()
    ) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        deleted: list[Record] = []
        cur: str | None = image_id
        while cur:
            rec = self.records.get(cur)
            with self.records.db.tx() as db:
                self.records.delete(db, cur)
            deleted.append(rec)
            self._configs.pop(cur, None)
            out.append({"Deleted": cur})
            nxt = rec.parent
            if not (prune_parents and nxt and self.records.find(nxt)):
                break
            if nxt in keep or self.records.refs_of(nxt) or self.records.children(nxt):
                break
            cur = nxt
        self._release(deleted)
        return out

    def _release(self, deleted: list[Record]) -> None:
        """Drop blobs and unpacked layers that only the deleted images used.

        Only candidates taken from the deleted images are considered (never a global sweep),
        so blobs that a concurrent pull has ingested but not yet recorded are safe."""
        remaining = self.records.all()
        used_blobs = {r.id for r in remaining} | {r.manifest_digest for r in remaining}
        used_chains: set[str] = set()
        for r in remaining:
            used_blobs.update(x.digest for x in r.layers)
            used_chains.update(chain_ids([x.diff_id for x in r.layers]))
        for rec in deleted:
            for blob in [rec.id, rec.manifest_digest, *(x.digest for x in rec.layers)]:
                if blob not in used_blobs:
                    try:
                        self.content.delete(blob)
                    except NotFound:
                        pass
            for chain in reversed(chain_ids([x.diff_id for x in rec.layers])):
                if chain in used_chains or not self.snapshots.exists(chain):
                    continue
                try:
                    self.snapshots.remove(chain)
                except Conflict:
                    break  # a container (or another layer) still builds on it

    def prune(
        self,
        *,
        dangling_only: bool = True,
        filters: dict[str, list[str]] | None = None,
        keep: Collection[str] = (),
    ) -> dict[str, Any]:
        """``docker image prune``. ``keep``: image ids used by containers (the caller knows).

        filters: ``until`` (RFC 3339, epoch seconds or a Go duration), ``label`` /
        ``label!`` (``key`` or ``key=value``), ``dangling`` (``true``/``false``)."""
        filters = filters or {}
        for k in filters:
            if k not in ("until", "label", "label!", "dangling"):
                raise InvalidArgument(f"invalid filter '{k}'")
        if "dangling" in filters:
            dangling_only = any(v.lower() in ("1", "true") for v in filters["dangling"])
        until = [_parse_until(v) for v in filters.get("until", [])]
        out: list[dict[str, str]] = []
        reclaimed = 0
        with self._lock:
            # Children first: an image with children can't go, and its children may go first.
            progress = True
            considered: set[str] = set()
            while progress:
                progress = False
                for img in self.list():
                    if img.id in keep or img.id in considered or self.records.children(img.id):
                        continue
                    if dangling_only and img.repo_tags:
                        continue
                    labels = img.container_config.get("Labels") or {}
                    if not _labels_match(labels, filters.get("label", []), filters.get("label!", [])):
                        considered.add(img.id)
                        continue
                    if until and any(rfc3339_to_epoch(img.created) >= u for u in until):
                        considered.add(img.id)
                        continue
                    considered.add(img.id)
                    for r in img.repo_tags + img.repo_digests:
                        out.append({"Untagged": r})
                    with self.records.db.tx() as db:
                        for r, _ in self.records.refs_of(img.id):
                            self.records.delete_ref(db, r)
                    before = self._unique_size(img)
                    out.extend(self._delete_chain(img.id, prune_parents=False))
                    reclaimed += before
                    progress = True
        return {"ImagesDeleted": out or None, "SpaceReclaimed": reclaimed}

    def _unique_size(self, img: Image) -> int:
        others: set[str] = set()
        for r in self.records.all():
            if r.id != img.id:
                others.update(x.digest for x in r.layers)
        return sum(x.unpacked_size for x in img.layer_blobs if x.digest not in others)

    # ------------------------------------------------------------------ history, df

    def history(self, ref: str) -> list[HistoryEntry]:
        """``docker history``: newest first; entries that are images carry their id and tags."""
        img = self.get(ref)
        entries = []
        sizes = [x.unpacked_size for x in img.layer_blobs]
        li = 0
        for h in img.config.get("history") or []:
            size = 0
            if not h.get("empty_layer"):
                size = sizes[li] if li < len(sizes) else 0
                li += 1
            entries.append(
                [
                    "<missing>", rfc3339_to_epoch(h.get("created", "")), h.get("created_by", ""),
                    (), size, h.get("comment", ""),
                ]
            )
        if not entries:
            for s in sizes:
                entries.append(["<missing>", rfc3339_to_epoch(img.created), "", (), s, ""])
        entries.reverse()
        cur: Image | None = img
        for e in entries:
            if cur is None:
                break
            e[0], e[3] = cur.id, cur.repo_tags
            cur = self.get(cur.parent) if cur.parent and self.records.find(cur.parent) else None
        return [HistoryEntry(*e) for e in entries]

    def disk_usage(self) -> DiskUsage:
        use: dict[str, int] = {}
        sizes: dict[str, int] = {}
        imgs = self.list()
        for img in imgs:
            for x in img.layer_blobs:
                use[x.digest] = use.get(x.digest, 0) + 1
                sizes[x.digest] = x.unpacked_size
        out = []
        for img in imgs:
            shared = sum(x.unpacked_size for x in img.layer_blobs if use[x.digest] > 1)
            out.append(ImageUsage(img.id, img.size, shared))
        return DiskUsage(sum(sizes.values()), tuple(out))

    # ------------------------------------------------------------------ container filesystems

    def prepare_rootfs(self, image_id: str | None, key: str, *, init_layer: bool = True) -> list[Mount]:
        """A writable snapshot for a container (``key``, e.g. its id) on top of the image.

        ``image_id`` None: an empty root filesystem (``FROM scratch`` in a build). With
        ``init_layer`` (docker's behaviour) a committed ``<key>-init`` snapshot with the
        runtime's mount points sits between the image and the container (images/initlayer.py),
        so they never show in ``changes``/``commit``. ``remove_rootfs`` removes both."""
        parent = None
        if image_id is not None:
            img = self.get(image_id)
            # Unpacked layers may be missing after a crash between blob and snapshot commit.
            self._unpack(list(img.layer_blobs))
            parent = img.layers[-1] if img.layers else None
        if not init_layer:
            return self.snapshots.prepare(key, parent)
        init = f"{key}-init"
        tmp = f"extract-{secrets.token_hex(8)}"
        self.snapshots.prepare(tmp, parent)
        try:
            lowers = self._lower_dirs(tmp) if self.snapshots.apply_mode == "overlay" else []
            initlayer.populate(self.snapshots.writable_dir(tmp), lowers)
            self.snapshots.commit(init, tmp)
        except BaseException:
            self.snapshots.remove(tmp)
            raise
        try:
            return self.snapshots.prepare(key, init)
        except BaseException:
            self.snapshots.remove(init)
            raise

    def _lower_dirs(self, key: str) -> list[Path]:
        """The directories of the snapshot's ancestors, nearest first."""
        out = []
        p = self.snapshots.info(key).parent
        while p is not None:
            out.append(self.snapshots.writable_dir(p))
            p = self.snapshots.info(p).parent
        return out

    def image_mounts(self, image_id: str) -> list[Mount]:
        """Read-only mounts of the image's own layers, no snapshot made (``[]``: no layers).

        For a quick look at an image (the builder checks a WORKDIR): cheaper than
        ``prepare_rootfs``, but nothing keeps the layers while mounted, so only for reads whose
        result doesn't matter once the image is gone."""
        img = self.get(image_id)
        self._unpack(list(img.layer_blobs))
        return self.snapshots.mounts(img.layers[-1]) if img.layers else []

    def rootfs_mounts(self, key: str, *, readonly: bool = False) -> list[Mount]:
        """Mount descriptions of ``key`` (with ``ro`` added when ``readonly``)."""
        ms = self.snapshots.mounts(key)
        if readonly:
            ms = [Mount(m.type, m.source, tuple(o for o in m.options if o != "rw") + ("ro",)) for m in ms]
        return ms

    def mount_rootfs(self, key: str, target: Path, *, readonly: bool = False) -> None:
        """Mount the snapshot ``key`` on ``target`` (an existing empty directory)."""
        mount_all(self.rootfs_mounts(key, readonly=readonly), Path(target))

    @staticmethod
    def unmount_rootfs(target: Path) -> None:
        unmount_all(Path(target))

    def remove_rootfs(self, key: str) -> None:
        """Remove the container's snapshot and its init layer (the snapshot may be gone
        already: ``commit(consume=True)`` turned it into a layer)."""
        if self.snapshots.exists(key) or not self.snapshots.exists(f"{key}-init"):
            self.snapshots.remove(key)
        if self.snapshots.exists(f"{key}-init"):
            self.snapshots.remove(f"{key}-init")

    def sweep_rootfs(self, containers: Collection[str]) -> list[str]:
        """Daemon start: remove container snapshots (64-hex keys and their ``-init`` layers)
        of containers that don't exist: a create or rm killed between the snapshot and the
        record. Returns the keys removed."""
        keys = {i.key for i in self.snapshots.list()}
        gone = []
        for cid in sorted({k[:-5] if k.endswith("-init") else k for k in keys}):
            if not _CONTAINER_KEY.fullmatch(cid) or cid in containers:
                continue
            try:
                self.remove_rootfs(cid)
            except Conflict:
                continue  # a layer was committed on top of it; image gc frees it later
            gone += [k for k in (cid, f"{cid}-init") if k in keys]
        return gone

    def rootfs_usage(self, key: str) -> int:
        """Bytes in the container's writable layer (``SizeRw``)."""
        return self.snapshots.usage(key)

    def _changes(self, key: str) -> tuple[list[compute.Entry], Path]:
        info = self.snapshots.info(key)
        upper = self.snapshots.writable_dir(key)
        if self.snapshots.apply_mode == "overlay":
            return compute.overlay_changes(upper, self._lower_dirs(key)), upper
        old = self.snapshots.writable_dir(info.parent) if info.parent else None
        return compute.naive_changes(upper, old), upper

    def changes(self, key: str) -> list[Change]:
        """``docker diff``: sorted (Path, Kind 0 modified / 1 added / 2 deleted)."""
        return [Change(e.path, e.kind) for e in self._changes(key)[0]]

    def commit(
        self,
        key: str,
        *,
        parent_image_id: str | None,
        config: dict[str, Any] | None = None,
        repo_tag: str | None = None,
        comment: str = "",
        author: str = "",
        changes: Iterable[str] = (),
        created_by: str = "",
        consume: bool = False,
        container: str = "",
    ) -> str:
        """``docker commit``: the snapshot's changes as a new layer on the parent image.

        ``container``: the id of the container committed, kept as the config's ``container``
        member as dockerd's commit does (image inspect's ``Container`` before API 1.45).

        ``config`` is the container config (Cmd, Env, ...) for the new image; ``changes`` are
        applied on top. Returns the new image id.

        ``consume`` (the builder, for a step's unmounted snapshot made by ``prepare_rootfs``
        on ``parent_image_id``): where the snapshotter allows it (overlay), the snapshot's upper
        directory itself becomes the layer (containerd's way: no copy, no re-extraction); the
        layer blob is written from it in the same pass that computes the DiffID. ``key`` is
        gone afterwards (``remove_rootfs(key)`` still removes its init layer). Otherwise, and
        for ``docker commit`` of a container, the layer is extracted into a new snapshot."""
        tag = str(reference.parse_normalized(repo_tag)) if repo_tag else None
        parent = self.get(parent_image_id) if parent_image_id else None
        base_cfg = config if config is not None else (parent.container_config if parent else {})
        cfg = apply_changes(base_cfg, list(changes))
        entries, upper = self._changes(key)
        parent_chain = parent.layers[-1] if parent and parent.layers else None
        if consume and self.snapshots.can_commit_onto:
            layer = self._commit_in_place(key, entries, upper, parent_chain)
        else:
            with ExitStack() as stack:
                tmp = stack.enter_context(tempfile.TemporaryFile(dir=self.content.root / "ingest"))
                compute.write_tar(tmp, upper, entries, include_parents=self.snapshots.apply_mode == "naive")
                tmp.seek(0)
                layer = self._ingest_and_unpack(tmp, parent_chain)
        created = now_rfc3339()
        pcfg = parent.config if parent else {}
        os_, arch, variant = (pcfg.get("os"), pcfg.get("architecture"), pcfg.get("variant")) if parent else host_platform()
        new: dict[str, Any] = {"architecture": arch or host_platform()[1]}
        if author:
            new["author"] = author
        if comment:
            new["comment"] = comment
        new["config"] = cfg
        if container:
            new["container"] = container
        new["created"] = created
        hist = list(pcfg.get("history") or [])
        h: dict[str, Any] = {"created": created}
        if author:
            h["author"] = author
        if created_by:
            h["created_by"] = created_by
        if comment:
            h["comment"] = comment
        hist.append(h)
        new["history"] = hist
        new["os"] = os_ or "linux"
        diff_ids = list((pcfg.get("rootfs") or {}).get("diff_ids") or []) + [layer.diff_id]
        new["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        if variant:
            new["variant"] = variant
        layers = list(parent.layer_blobs if parent else ()) + [layer]
        return self._register(new, layers, tags=[tag] if tag else [], parent=parent.id if parent else "")

    def _commit_in_place(
        self, key: str, entries: list[compute.Entry], upper: Path, parent_chain: str | None
    ) -> Layer:
        """The upper directory of ``key`` as the layer on ``parent_chain``: blob, then snapshot.

        Crash order: the blob is committed first (a stray blob is swept by ``gc``), then the
        snapshot is renamed to the layer's ChainID and re-parented in one SQLite transaction
        (an unreferenced layer is swept by ``gc`` too); the image row comes last."""
        with self.content.writer() as w:
            # Stored uncompressed: the blob digest is the DiffID (compressing in Python costs
            # far more than it saves locally; a registry accepts uncompressed layers as they are).
            content_size = compute.write_tar(w, upper, entries)  # type: ignore[arg-type]
            blob = w.commit()
        diff_id = blob
        chain = chain_on(parent_chain, diff_id)
        try:
            self.snapshots.commit_onto(chain, key, parent_chain)
        except AlreadyExists:
            pass  # the same layer is unpacked already (another build): ``key`` stays the caller's
        self._sizes[diff_id] = content_size
        return Layer(mt.layer_type_for("none"), blob, w.size, diff_id, content_size)

    def export_rootfs(self, key: str, out: BinaryIO, *, mounted: Path | None = None) -> None:
        """``docker export``: the container's merged filesystem as a tar written to ``out``.

        ``mounted``: where the caller already has it mounted (a running container's bundle
        rootfs, seen from the daemon's mount namespace); otherwise it is mounted on a temp
        directory for the duration (and unmounted at the next start if the daemon dies)."""
        if mounted is not None:
            compute.write_tree(out, Path(mounted))
            return
        with ExitStack() as stack:
            target = Path(tempfile.mkdtemp(prefix="export-", dir=self.root / "tmp"))
            stack.callback(os.rmdir, target)
            self.mount_rootfs(key, target)
            stack.callback(self.unmount_rootfs, target)
            compute.write_tree(out, target)

    # ------------------------------------------------------------------ load / save

    def load(self, stream: BinaryIO) -> list[str]:
        """``docker load``: docker-archive or OCI layout tar. Returns the lines docker prints."""
        from dockyard.images.archive import load_archive

        return load_archive(self, stream)

    def save(self, refs: list[str], out: BinaryIO) -> None:
        """``docker save``: one tar with docker's manifest.json/repositories and an OCI layout."""
        from dockyard.images.archive import save_archive

        save_archive(self, refs, out)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        v = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"{what}: invalid JSON: {e}") from None
    if not isinstance(v, dict):
        raise InvalidArgument(f"{what}: expected a JSON object")
    return v


def _labels_match(labels: dict[str, str], want: list[str], not_want: list[str]) -> bool:
    def has(expr: str) -> bool:
        k, sep, v = expr.partition("=")
        return k in labels and (not sep or labels[k] == v)

    return all(has(x) for x in want) and not any(has(x) for x in not_want)


def _parse_until(v: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)", v)
    if m:
        total = 0.0
        for num, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", v):
            total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        return time.time() - total
    e = rfc3339_to_epoch(v)
    if e:
        return e
    try:
        d = datetime.fromisoformat(v)
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        raise InvalidArgument(f"invalid filter 'until={v}'") from None
