"""``docker load`` / ``docker save`` archives.

An archive written by :func:`save_archive` is both formats at once, as Docker 25+ writes it::

    blobs/sha256/<hex>      config, manifest and layer blobs (layers as stored)
    oci-layout              {"imageLayoutVersion": "1.0.0"}
    index.json              OCI index; one manifest descriptor per tag, annotated with
                            io.containerd.image.name (full reference) and
                            org.opencontainers.image.ref.name (the tag)
    manifest.json           docker-archive: [{"Config", "RepoTags", "Layers"}] pointing into blobs/
    repositories            legacy {"name": {"tag": "<top layer hex>"}}

:func:`load_archive` reads either format (plain or compressed tar): ``index.json`` when
present (manifest digests are kept, so RepoDigests survive), else ``manifest.json`` (older
``docker save`` output: ``<id>.json`` configs and ``<id>/layer.tar`` files, possibly symlinks
to each other). The archive is hostile input: its member names never become paths on disk.
Regular files are written to a scratch directory under numbered names, symlinks and hard links
are resolved by name inside the archive only. Blobs are hashed while being read and moved into
the content store under their real digest; on failure, blobs the load added are dropped.

Single pass, whatever the order. When a layer blob ``blobs/sha256/<hex>`` arrives after a
manifest naming it and that manifest's config (the order :func:`save_archive` writes), and the
layers below it are unpacked already, the layer goes straight from the archive into the content
store and the chroot'd extractor at once (``ImageService.ingest_layer``: digest from the
member's name, size and the config's DiffID are all verified, an uncompressed layer is hashed
once). A layer that comes before its config (``docker save``'s order: layers, then config and
manifest; docker 20.10's ``<dir>/layer.tar`` with ``manifest.json`` last) is stored and
unpacked as it passes too, on a guessed parent (``_Streamer.speculate``: the layer this load
unpacked last, or the parent dir its ``<dir>/json`` names), and its snapshot is named by the
ChainID of what was really extracted, so a wrong guess is never mistaken for the right layer:
``add_image`` then unpacks that layer again from the stored blob and the load drops the
unused snapshot. Other members (configs, manifests, JSON) go to a scratch file. Either way the
image becomes visible only when ``add_image`` records it; on failure the blobs and unpacked
layers this load added are dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard.diff.decompress import NONE, PlainReader, detect, read_head
from dockyard.errors import InvalidArgument, NotFound
from dockyard.images.platforms import host_platform, matches
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference
from dockyard.oci.digest import Digest
from dockyard.oci.identity import chain_ids, chain_on

if TYPE_CHECKING:
    from dockyard.images.service import ImageService

_MAX_LINK_HOPS = 16
# Blobs up to this size are parsed as JSON in passing, in case they are a manifest or a config
# that tells where a later layer goes (manifests and configs are a few kB; layers are tars).
_SNIFF_MAX = 4 << 20


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    digest: str
    size: int


class _Archive:
    def __init__(self, files: dict[str, _File], links: dict[str, str]) -> None:
        self.files, self.links = files, links

    def get(self, name: str) -> _File:
        n = _norm(name)
        for _ in range(_MAX_LINK_HOPS):
            if n in self.files:
                return self.files[n]
            if n not in self.links:
                break
            n = self.links[n]
        raise InvalidArgument(f"invalid archive: {name} is missing")

    def has(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except InvalidArgument:
            return False

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.get(name).path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"invalid archive: {name}: invalid JSON: {e}") from None


class ForwardReader:
    """A stream that tarfile's seekable mode accepts: tell() counts, seek() may only go forward.

    tarfile's stream mode ("r|") re-buffers by concatenating bytes and runs at a third of the
    speed; reading the stream's buffer directly avoids that copy. tarfile only seeks forward
    while reading sequentially (a backwards seek is refused and reported as an error)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._pos = 0
        self.last_header = b""  # the last 512-byte read: tarfile reads headers this way

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._pos += len(data)
        if n == tarfile.BLOCKSIZE:
            self.last_header = data
        return data

    def read_data(self, n: int) -> bytes:
        """Member data, read past tarfile (which copies it twice more): see :class:`_Member`."""
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def readinto_data(self, b: bytearray | memoryview) -> int:
        """:meth:`read_data` into the caller's buffer (no bytes object per read)."""
        k = readinto(self._f, b)
        self._pos += k
        return k

    def check_end(self) -> None:
        """tarfile ends quietly on a truncated or garbage header after the first member. Like
        Go's archive/tar (what docker uses), accept only a zero block or a clean EOF there."""
        end = self.last_header
        if end and (len(end) != tarfile.BLOCKSIZE or end.count(0) != tarfile.BLOCKSIZE):
            raise tarfile.ReadError(
                "unexpected end of data (truncated header)" if len(end) != tarfile.BLOCKSIZE
                else "invalid tar header"
            )

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def seek(self, off: int, whence: int = 0) -> int:
        if whence == 1:
            off += self._pos
        elif whence != 0:
            raise OSError("seek from the end of a stream")
        if off < self._pos:
            raise OSError(f"seek backwards in a stream (to {off} from {self._pos})")
        while self._pos < off:
            if not self.read(min(off - self._pos, 1 << 20)):
                break
        return self._pos


class _Member:
    """A member's data read straight from the archive stream, ``size`` bytes at most.

    Only while the stream stands at the member's data (tarfile has read the header and
    nothing else); tarfile's next header read seeks forward over the padding and anything left
    unread. A stream that ends early is an error, not a short member."""

    def __init__(self, fwd: ForwardReader, name: str, size: int) -> None:
        self._fwd, self._name, self._left = fwd, name, size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fwd.read_data(n)
        if not data:
            raise EOFError(f"unexpected end of data in {self._name}")  # _read names the archive
        self._left -= len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:
        view = memoryview(b).cast("B")
        if self._left <= 0 or not view:
            return 0
        k = self._fwd.readinto_data(view[: min(len(view), self._left)])
        if not k:
            raise EOFError(f"unexpected end of data in {self._name}")
        self._left -= k
        return k


def readinto(src: BinaryIO, b: bytearray | memoryview) -> int:
    """``src.readinto(b)`` where ``src`` has it (no bytes object per read), else a read."""
    fn = getattr(src, "readinto", None)
    if fn is not None:
        return int(fn(b))
    data = src.read(len(b))
    memoryview(b).cast("B")[: len(data)] = data
    return len(data)


def _norm(name: str) -> str:
    n = posixpath.normpath("/" + name).lstrip("/")
    return n


class _Streamer:
    """Learns manifests and configs as they pass and unpacks a layer on the fly when it can.

    A layer is unpacked in passing only when every layer below it in some manifest seen so far
    is unpacked (its ChainID is known to the snapshotter) and that manifest's config was seen,
    so the layer's DiffID (verified by the extraction) and parent ChainID are known."""

    def __init__(self, svc: ImageService) -> None:
        self.svc = svc
        self.layers_of: dict[str, list[tuple[str, int]]] = {}  # layer digest -> [(config, index)]
        self.diff_ids: dict[str, list[str]] = {}  # config digest -> rootfs.diff_ids
        self.configs_seen: set[str] = set()
        self.added_blobs: list[str] = []  # stored by this load, straight into the content store
        self.added_chains: list[str] = []  # unpacked by this load
        self.last_chain: str | None = None  # the ChainID this load unpacked last
        self.v1_parent: dict[str, str | None] = {}  # legacy archive: layer dir -> parent dir
        self.v1_chain: dict[str, str] = {}  # legacy archive: layer dir -> ChainID unpacked

    def sniff(self, data: bytes, digest: str, name: str = "") -> None:
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(doc, dict):
            return
        parts = name.split("/")
        if len(parts) == 2 and parts[1] == "json" and isinstance(doc.get("id"), str):
            parent = doc.get("parent")  # a legacy `<dir>/json`: which dir the layer sits on
            self.v1_parent[parts[0]] = parent if isinstance(parent, str) and parent else None
            return
        cfg, layers = doc.get("config"), doc.get("layers")
        if isinstance(cfg, dict) and isinstance(cfg.get("digest"), str) and isinstance(layers, list):
            for i, d in enumerate(layers):
                if isinstance(d, dict) and isinstance(d.get("digest"), str):
                    self.layers_of.setdefault(d["digest"], []).append((cfg["digest"], i))
            return
        rootfs = doc.get("rootfs")
        ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if isinstance(ids, list) and all(isinstance(x, str) for x in ids):
            try:
                for x in ids:
                    Digest.parse(x)
            except InvalidArgument:
                return
            self.diff_ids[digest] = ids

    def place(self, digest: str) -> tuple[str, str | None] | None:
        """(DiffID, parent ChainID) if the layer ``digest`` can be unpacked now, else None."""
        for cfg, i in self.layers_of.get(digest, []):
            ids = self.diff_ids.get(cfg)
            if ids is None or i >= len(ids):
                continue
            parent = chain_ids(ids[:i])[-1] if i else None
            if parent is not None and not self.svc.snapshots.exists(parent):
                continue
            return ids[i], parent
        return None

    def try_unpack(self, name: str, src: BinaryIO, size: int) -> _File | None:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "blobs" or parts[1] != "sha256":
            return None
        digest = f"sha256:{parts[2]}"
        try:
            Digest.parse(digest)
        except InvalidArgument:
            return None
        where = self.place(digest)
        if where is None:
            return None
        diff_id, parent = where
        chain = chain_on(parent, diff_id)
        if self.svc.snapshots.exists(chain) or self.svc.content.exists(digest):
            return None  # present already (partly): the ordinary road skips what it can
        try:
            self.svc.ingest_layer(src, digest=digest, size=size, diff_id=diff_id, parent_chain=parent)
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid archive: {name}: {e}") from None
        self.added_blobs.append(digest)
        self.added_chains.append(chain)
        self.last_chain = chain
        return _File(self.svc.content.path(digest), digest, size)

    def speculate(self, name: str, head: bytes, src: BinaryIO, size: int) -> _File | None:
        """Store and unpack a layer whose image is not known yet (``docker save`` writes layers
        before their config and manifest), on a guessed parent: the layer this load unpacked
        last, or for a legacy ``<dir>/layer.tar`` the one its ``<dir>/json`` names. The
        snapshot is named by the ChainID of what was really extracted, so a wrong guess costs
        only time: ``add_image`` unpacks that layer again from the stored blob and the load
        drops the unused snapshot. ``head`` is the member's first bytes (``src`` still yields
        them): only a tar, gzip or zstd stream is taken for a layer. None: not handled here
        (nothing read beyond ``head``)."""
        parts = name.split("/")
        digest: str | None = None
        v1: str | None = None
        guess = self.last_chain
        if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256":
            digest = f"sha256:{parts[2]}"
            try:
                Digest.parse(digest)
            except InvalidArgument:
                return None
            if self.svc.content.exists(digest):
                return None  # stored already (and so unpacked, most likely): skip the work
        elif len(parts) == 2 and parts[1] == "layer.tar":
            v1 = parts[0]
            if v1 in self.v1_parent:
                parent = self.v1_parent[v1]
                if parent is not None and parent not in self.v1_chain:
                    return None  # its parent is not unpacked yet: the two-pass road
                guess = self.v1_chain[parent] if parent is not None else None
        else:
            return None
        kind = detect(head)
        is_tar = len(head) == 512 and (head[257:262] == b"ustar" or not head.strip(b"\0"))
        if kind not in ("gzip", "zstd") and not (kind == NONE and is_tar):
            return None
        if guess is not None and not self.svc.snapshots.exists(guess):
            guess = None
        try:
            layer = self.svc.unpack_layer(src, guess, digest=digest, size=size)
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid archive: {name}: {e}") from None
        chain = chain_on(guess, layer.diff_id)
        self.added_blobs.append(layer.digest)
        self.added_chains.append(chain)
        self.last_chain = chain
        if v1 is not None:
            self.v1_chain[v1] = chain
        return _File(self.svc.content.path(layer.digest), layer.digest, size)


class _Prefixed:
    """``head`` then the rest of ``src``: an uncompressed archive is read without PlainReader's
    re-buffering (a copy and a memmove per read, a third of a load's time on a big layer)."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head, self._src = head, src

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._src.read(n)
        if n < 0:
            out, self._head = self._head + self._src.read(), b""
        elif n >= len(self._head):  # a full read: tarfile takes a short one for the end
            out, self._head = self._head + self._src.read(n - len(self._head)), b""
        else:
            out, self._head = self._head[:n], self._head[n:]
        return out

    def readinto(self, b: bytearray | memoryview) -> int:
        view = memoryview(b).cast("B")
        k = 0
        if self._head:
            k = min(len(self._head), len(view))
            view[:k] = self._head[:k]
            self._head = self._head[k:]
            if self._head or k == len(view):
                return k
        return k + readinto(self._src, view[k:])


def _plain(stream: BinaryIO) -> BinaryIO:
    head = read_head(stream, 1 << 16)
    if detect(head) == NONE:
        return _Prefixed(head, stream)  # type: ignore[return-value]
    return PlainReader(_Prefixed(head, stream))  # type: ignore[arg-type]


def _read(stream: BinaryIO, scratch: Path, streamer: _Streamer | None = None) -> _Archive:
    files: dict[str, _File] = {}
    links: dict[str, str] = {}
    try:
        # Decompress ourselves (gzip, zstd, xz, bzip2: docker load takes `docker save | gzip`)
        # and read with tarfile's seekable mode over a forward-only reader: faster than "r|*".
        fwd = ForwardReader(_plain(stream))
        with tarfile.open(fileobj=fwd, mode="r:", copybufsize=1 << 20) as tf:
            for i, m in enumerate(tf):
                name = _norm(m.name)
                if m.isreg():
                    src: BinaryIO | None = (
                        _Member(fwd, m.name, m.size)  # type: ignore[assignment]
                        if fwd.tell() == m.offset_data else tf.extractfile(m)
                    )
                    assert src is not None
                    if streamer is not None:
                        done = streamer.try_unpack(name, src, m.size)
                        if done is None:
                            head = src.read(min(m.size, 512))
                            src = _Prefixed(head, src)  # type: ignore[assignment]
                            done = streamer.speculate(name, head, src, m.size)  # type: ignore[arg-type]
                        if done is not None:
                            files[name] = done
                            tf.members.clear()
                            continue
                    h = hashlib.sha256()
                    p = scratch / str(i)
                    left = m.size
                    small = bytearray() if streamer is not None and m.size <= _SNIFF_MAX else None
                    with open(p, "wb") as f:
                        while left:
                            chunk = src.read(min(left, 1 << 20))
                            if not chunk:
                                raise tarfile.ReadError(f"unexpected end of data in {m.name}")
                            h.update(chunk)
                            f.write(chunk)
                            if small is not None:
                                small += chunk
                            left -= len(chunk)
                    files[name] = _File(p, "sha256:" + h.hexdigest(), m.size)
                    if small is not None and streamer is not None:
                        streamer.sniff(bytes(small), files[name].digest, name)
                elif m.issym():
                    links[name] = _norm(posixpath.join(posixpath.dirname(name), m.linkname))
                elif m.islnk():
                    links[name] = _norm(m.linkname)
                tf.members.clear()  # nothing needs them again; a big archive would pile them up
            fwd.check_end()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InvalidArgument(f"invalid archive: {e}") from None
    return _Archive(files, links)


def _adopt(svc: ImageService, f: _File, added: list[str]) -> str:
    if not svc.content.exists(f.digest):
        svc.content.adopt(f.path, f.digest)
        added.append(f.digest)
    return f.digest


def _host_match(desc: dict[str, Any]) -> bool:
    ann = desc.get("annotations") or {}
    return "vnd.docker.reference.type" not in ann and matches(desc.get("platform"), host_platform())


def _load_oci(svc: ImageService, ar: _Archive, added: list[str]) -> list[str]:
    index = ar.json("index.json")
    blobs: dict[str, _File] = {}
    for name, f in ar.files.items():
        if name.startswith("blobs/"):
            parts = name.split("/")
            if len(parts) != 3:
                continue
            expected = f"{parts[1]}:{parts[2]}"
            Digest.parse(expected)
            if expected != f.digest:
                raise InvalidArgument(f"invalid archive: {name} has digest {f.digest}")
            blobs[expected] = f
    for d in blobs.values():
        _adopt(svc, d, added)
    # Scratch files are written without fsync: one syncfs makes every adopted blob durable
    # before add_image records an image that references them.
    svc.content.sync()
    out: list[str] = []

    def walk(idx: Any, where: str, inherited: dict[str, str]) -> None:
        if not isinstance(idx, dict) or not isinstance(idx.get("manifests"), list):
            raise InvalidArgument(f"invalid archive: {where}: no manifests list")
        for desc in idx["manifests"]:
            if not isinstance(desc, dict) or "digest" not in desc:
                raise InvalidArgument(f"invalid archive: {where}: bad manifest descriptor")
            digest = desc["digest"]
            if not svc.content.exists(digest):
                raise InvalidArgument(f"invalid archive: blob {digest} named in {where} is missing")
            ann = {**inherited, **(desc.get("annotations") or {})}
            if desc.get("mediaType") in mt.INDEX_TYPES:
                child = json.loads(svc.content.read(digest))
                # Multi-platform: only this host's platform (the first one if none matches).
                ms = [x for x in child.get("manifests", []) if _host_match(x)] or child.get("manifests", [])[:1]
                walk({"manifests": ms}, digest, ann)
                continue
            name = ann.get(mt.ANNOTATION_CONTAINERD_NAME) or ""
            refname = ann.get(mt.ANNOTATION_REF_NAME) or ""
            if not name and refname and ("/" in refname or ":" in refname):
                name = refname
            tags = []
            if name:
                try:
                    tags = [str(reference.parse_normalized(name))]
                except InvalidArgument:
                    tags = []
            iid = svc.add_image(digest, repo_tags=tags)
            out.extend(f"Loaded image: {reference.familiar(t)}" for t in tags)
            if not tags:
                out.append(f"Loaded image ID: {iid}")

    walk(index, "index.json", {})
    return out


def _load_docker(svc: ImageService, ar: _Archive, added: list[str]) -> list[str]:
    manifest = ar.json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    out: list[str] = []
    for i, entry in enumerate(manifest):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArgument(f"invalid archive: manifest.json entry {i} has no Config")
        cfg = ar.get(entry["Config"])
        cfg_digest = _adopt(svc, cfg, added)
        layers = []
        for lp in entry.get("Layers") or []:
            f = ar.get(lp)
            with open(f.path, "rb") as fh:
                kind = detect(fh.read(8))
            if kind not in ("none", "gzip", "zstd"):
                raise InvalidArgument(f"invalid archive: layer {lp} is {kind}-compressed")
            layers.append({"mediaType": mt.layer_type_for(kind), "digest": _adopt(svc, f, added), "size": f.size})
        man = json.dumps(
            {
                "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": cfg_digest, "size": cfg.size},
                "layers": layers,
            },
            separators=(",", ":"),
        ).encode()
        existed = svc.content.exists("sha256:" + hashlib.sha256(man).hexdigest())
        with svc.content.batch() as batch:  # its sync covers the adopted scratch files too
            man_digest = batch.put(man)
        if not existed:
            added.append(man_digest)
        tags = [str(reference.parse_normalized(t)) for t in entry.get("RepoTags") or []]
        iid = svc.add_image(man_digest, repo_tags=tags)
        out.extend(f"Loaded image: {reference.familiar(t)}" for t in tags)
        if not tags:
            out.append(f"Loaded image ID: {iid}")
    return out


def load_archive(svc: ImageService, stream: BinaryIO) -> list[str]:
    scratch = svc.content.scratch_dir()
    added: list[str] = []
    streamer = _Streamer(svc)
    try:
        ar = _read(stream, scratch, streamer)
        if ar.has("index.json"):
            out = _load_oci(svc, ar, added)
        elif ar.has("manifest.json"):
            out = _load_docker(svc, ar, added)
        else:
            raise InvalidArgument(
                "invalid archive: neither index.json (OCI layout) nor manifest.json (docker save) found"
            )
        _drop_unused(svc, streamer, [])  # layers unpacked on a parent no image asked for
        return out
    except BaseException:
        _drop_unused(svc, streamer, [*added, *streamer.added_blobs])
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _drop_unused(svc: ImageService, streamer: _Streamer, blobs: list[str]) -> None:
    """Remove the snapshots this load unpacked and the ``blobs`` it added that no image uses."""
    used: set[str] = set()
    used_chains: set[str] = set()
    for r in svc.records.all():
        used.update({r.id, r.manifest_digest, *(x.digest for x in r.layers)})
        used_chains.update(chain_ids([x.diff_id for x in r.layers]))
    for chain in reversed(streamer.added_chains):  # children before their parents
        if chain not in used_chains and svc.snapshots.exists(chain):
            svc.snapshots.remove(chain)
    for d in blobs:
        if d not in used:
            try:
                svc.content.delete(d)
            except NotFound:
                pass


def save_archive(svc: ImageService, refs: list[str], out: BinaryIO) -> None:
    """Write the images ``refs`` name (tags as named; an id saves the image untagged)."""
    if not refs:
        raise InvalidArgument("no images specified")
    # image id -> full tags to write, in first-seen order
    chosen: dict[str, list[str]] = {}
    for ref in refs:
        iid, matched = svc._lookup(ref)
        tags = chosen.setdefault(iid, [])
        if matched is not None and "@" not in matched and matched not in tags:
            tags.append(matched)
    blobs: dict[str, None] = {}
    index: list[dict[str, Any]] = []
    docker: list[dict[str, Any]] = []
    repos: dict[str, dict[str, str]] = {}
    for iid, tags in chosen.items():
        img = svc.get(iid)
        man_bytes = svc.content.read(img.manifest_digest)
        man_type = json.loads(man_bytes).get("mediaType") or mt.OCI_MANIFEST
        for d in (iid, img.manifest_digest, *(x.digest for x in img.layer_blobs)):
            blobs[d] = None
        base = {"mediaType": man_type, "digest": img.manifest_digest, "size": len(man_bytes)}
        if not tags:
            index.append(base)
        for t in tags:
            r = reference.parse(t)
            index.append({**base, "annotations": {
                mt.ANNOTATION_CONTAINERD_NAME: t, mt.ANNOTATION_REF_NAME: r.tag or "",
            }})
            top = img.layer_blobs[-1].digest.split(":", 1)[1] if img.layer_blobs else ""
            repos.setdefault(r.familiar_name, {})[r.tag or "latest"] = top
        docker.append({
            "Config": "blobs/sha256/" + iid.split(":", 1)[1],
            "RepoTags": [reference.familiar(t) for t in tags] or None,
            "Layers": ["blobs/sha256/" + x.digest.split(":", 1)[1] for x in img.layer_blobs],
        })

    w = _TarOut(out)
    w.dir("blobs")
    w.dir("blobs/sha256")
    for d in blobs:
        with svc.content.open(d) as f:
            w.file("blobs/sha256/" + d.split(":", 1)[1], svc.content.size(d), f)
    w.data("oci-layout", json.dumps({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}).encode())
    w.data("index.json", json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index}, separators=(",", ":")
    ).encode())
    w.data("manifest.json", json.dumps(docker, separators=(",", ":")).encode())
    if repos:
        w.data("repositories", json.dumps(repos, separators=(",", ":")).encode())
    w.close()


class _TarOut:
    """A tar writer for ``save``: headers from ``tarfile.TarInfo`` (PAX format, the bytes
    ``tarfile`` writes), data copied in 1 MiB writes, or by sendfile(2) when ``out`` is a file
    descriptor. ``tarfile``'s stream mode wrote 10 KiB records: 20,000 writes for a 200 MB
    layer, each a round trip to the event loop when ``out`` is an API response."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._fd: int | None = None
        try:
            out.flush()
            self._fd = out.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._written = 0

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def _header(self, name: str, size: int, kind: bytes, mode: int) -> None:
        ti = tarfile.TarInfo(name)
        ti.type, ti.size, ti.mode = kind, size, mode
        self._write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        if size % tarfile.BLOCKSIZE:
            self._write(b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE))

    def dir(self, name: str) -> None:
        self._header(name, 0, tarfile.DIRTYPE, 0o755)

    def data(self, name: str, data: bytes) -> None:
        self._header(name, len(data), tarfile.REGTYPE, 0o644)
        self._write(data)
        self._pad(len(data))

    def file(self, name: str, size: int, f: BinaryIO) -> None:
        self._header(name, size, tarfile.REGTYPE, 0o644)
        left = size
        if self._fd is not None:
            self._out.flush()
            src, off = f.fileno(), 0
            while left:
                n = os.sendfile(self._fd, src, off, min(left, 1 << 30))
                if n == 0:
                    raise InvalidArgument(f"blob {name} is shorter than its {size} bytes")
                off += n
                left -= n
            self._written += size
        else:
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise InvalidArgument(f"blob {name} is shorter than its {size} bytes")
                self._write(chunk)
                left -= len(chunk)
        self._pad(size)

    def close(self) -> None:
        """The end-of-archive marker, padded to a whole record as tarfile does."""
        end = 2 * tarfile.BLOCKSIZE
        end += -(self._written + end) % tarfile.RECORDSIZE
        self._write(b"\0" * end)
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()
