"""Apply a (possibly compressed) layer tar onto a snapshot directory, without path escape.

:func:`apply_layer` reads the layer once: every byte goes to an optional ``sink``
(the content store writer), the decompressed bytes are hashed (the DiffID) and piped into a
fresh ``python -I chroot_extract.py`` child that chroots into the target before reading a
single member (see chroot_extract.py for why). The daemon is threaded, so the child is
spawned with fork+exec (``subprocess``), never a bare fork.

On failure (corrupt/truncated stream, bad tar, extraction error) ``InvalidArgument`` is
raised; the caller owns the target directory and must discard it (the image service
extracts into a fresh snapshot and removes it on failure).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.diff.decompress import GZIP, NONE, ZSTD, Decompressor, detect, read_head
from dockyard.errors import InvalidArgument, PermissionDenied

_EXTRACTOR = str(Path(__file__).with_name("chroot_extract.py"))
_BUF = 1 << 20
RAW_KINDS = (NONE, GZIP, ZSTD)


@dataclass(frozen=True, slots=True)
class Applied:
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # uncompressed tar size in bytes
    content_size: int  # file sizes + symlink lengths, hard links once (docker's layer SIZE)
    compression: str  # what the input was: none, gzip, zstd, xz, bzip2
    sink_compression: str  # what ``sink`` received: the raw input if none/gzip/zstd, else plain
    sink_digest: str  # sha256 of what ``sink`` received (so the writer needn't hash it again)
    sink_size: int


def apply_layer(
    src: BinaryIO,
    target: Path,
    mode: str,
    *,
    sink: Callable[[bytes], None] | None = None,
) -> Applied:
    """Apply the layer read from ``src`` onto ``target`` (``mode``: ``overlay`` or ``naive``).

    ``sink`` (the content store writer) receives the input as it is when it is uncompressed,
    gzip or zstd (the layer media types OCI knows) and decompressed otherwise (xz, bzip2), so
    a stored blob is always one a registry and ``docker load`` accept."""
    if os.geteuid() != 0:
        raise PermissionDenied("unpacking a layer needs root (chroot)")
    h = hashlib.sha256()
    size = 0
    head = read_head(src, _BUF)
    if not head:
        raise InvalidArgument("layer is empty (0 bytes): not a tar archive")
    dec = Decompressor(detect(head))
    raw_sink = sink if dec.kind in RAW_KINDS else None
    plain_sink = sink if raw_sink is None else None
    # Uncompressed input: what the sink gets is what is hashed for the DiffID already.
    raw_h = hashlib.sha256() if raw_sink is not None and dec.kind != NONE else None
    raw_size = 0
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", _EXTRACTOR, str(target), mode],
            stdin=subprocess.PIPE, stdout=out, stderr=err, bufsize=0,
            close_fds=True,
            # A 1 MiB pipe lets this side hash the next chunk while the child extracts.
            pipesize=_BUF,
        )
        pipe_open = True
        try:
            chunk = head
            while chunk:
                if raw_sink is not None:
                    raw_sink(chunk)
                    raw_size += len(chunk)
                    if raw_h is not None:
                        raw_h.update(chunk)
                plain = dec.feed(chunk)
                if plain:
                    h.update(plain)
                    if plain_sink is not None:
                        plain_sink(plain)
                    size += len(plain)
                    if pipe_open:
                        try:
                            proc.stdin.write(plain)  # type: ignore[union-attr]
                        except BrokenPipeError:
                            # The child stopped (error or end of archive): keep hashing so the
                            # digest covers the whole stream; its exit status tells the rest.
                            pipe_open = False
                chunk = src.read(_BUF)
            dec.finish()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass
        rc = proc.wait()
        if rc != 0:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip().splitlines()
            raise InvalidArgument(msg[-1] if msg else f"layer extraction failed (status {rc})")
        out.seek(0)
        try:
            content_size = int(out.read().decode().strip() or 0)
        except ValueError:
            content_size = 0
    diff_id = "sha256:" + h.hexdigest()
    if raw_h is not None:
        sink_digest, sink_size = "sha256:" + raw_h.hexdigest(), raw_size
    else:
        sink_digest, sink_size = diff_id, size
    return Applied(
        diff_id, size, content_size, dec.kind, dec.kind if raw_sink else "none", sink_digest, sink_size
    )
