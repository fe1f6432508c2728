"""Apply a (possibly compressed) layer tar onto a snapshot directory, without path escape.

:func:`apply_layer` reads the layer once: every byte goes to an optional ``sink``
(the content store writer's ``write``, for a compressed layer given with ``blob=``), the decompressed bytes are hashed (the DiffID) and piped into a
fresh ``python -I chroot_extract.py`` child that chroots into the target before reading a
single member (see chroot_extract.py for why). The daemon is threaded, so the child is
spawned with fork+exec (``subprocess``), never a bare fork.

The stages overlap on two cores: each chunk goes down the pipe first (the extractor, whose
file creation in the kernel is the slow stage, starts on it at once; the pipe holds 8 MiB),
then this thread writes it to ``sink`` and hashes it (hashlib and write(2) release the GIL);
a background syncfs every 32 MiB (:class:`_Flusher`) lets the disk write the files meanwhile.

An uncompressed layer stored in the content store (``blob=``, what load, import and the
single-pass unpack give) takes no pipe at all: each chunk is written to the blob file, its new
total is sent on a small control pipe, and the extractor (``--follow``) copies the members'
data from the blob file into the new files with copy_file_range(2), never reading past the
last total, while this thread hashes the chunk. An uncompressed layer read from a regular file
from its start (a stored blob unpacked again, a tar the builder ADDs) goes the same way, the
extractor reading that file behind this thread's reads. The pipe's copy, page allocations and
wake-ups are gone (~100 ms of CPU of this thread for a 200 MB layer, of ~0.9 s the whole load
takes on this 2-core host), and a slow extractor no longer holds up the store (the blob is in
the page cache when it gets there)::

    src --read--> this thread --write--> blob file (ingest/<random>) <--copy_file_range-- extractor
                      |  +--8-byte totals--> control pipe ----------------------------^
                      +--sha256 (DiffID = blob digest)

Placement: the target is marked ``chattr +T`` first (:func:`_spread_subdirs`): on this host's
journal-less ext4, creating files in the store's churned block group cost 0.3 ms of kernel CPU
each (the allocator skips every inode freed in the last 5 minutes), most of a load's CPU.

Durability: no extracted file is fsynced, as neither docker (overlay2's ApplyDiff) nor
containerd (its applier, unless the opt-in ``sync_fs``) syncs them. What makes a load or pull
crash-consistent is the order the image service keeps: the blob is fsynced on commit (as
containerd's content writer does), ONE syncfs of the store's filesystem precedes the image
record that makes the layer reachable, and the start-up ``gc`` removes every unpacked layer
and blob no image record references, so a crash leaves no half image and no half layer that
a later load would reuse. (Docker can: it records the layer without syncing its files.)

On failure (corrupt/truncated stream, bad tar, extraction error) ``InvalidArgument`` is
raised; the caller owns the target directory and must discard it (the image service
extracts into a fresh snapshot and removes it on failure).
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from dockyard.diff.decompress import GZIP, NONE, ZSTD, Decompressor, detect, read_head
from dockyard.errors import InvalidArgument, PermissionDenied

_EXTRACTOR = str(Path(__file__).with_name("chroot_extract.py"))
_BUF = 1 << 20
_PIPE = 8 << 20
_FLUSH_EVERY = 32 << 20
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


class BlobFile(Protocol):
    """A sink that is a file the extractor may read back: the content store's ``Writer``."""

    path: Path

    def write(self, data: bytes | memoryview) -> None: ...

    def flush(self) -> None: ...


def apply_layer(
    src: BinaryIO,
    target: Path,
    mode: str,
    *,
    blob: BlobFile | None = None,
) -> Applied:
    """Apply the layer read from ``src`` onto ``target`` (``mode``: ``overlay`` or ``naive``).

    ``blob`` (the content store writer) receives the input as it is when it is uncompressed,
    gzip or zstd (the layer media types OCI knows) and decompressed otherwise (xz, bzip2), so a
    stored blob is always one a registry and ``docker load`` accept. With ``blob`` and an uncompressed layer, the extractor reads the blob file as
    it grows instead of a pipe (see chroot_extract.py's ``--follow``)."""
    if os.geteuid() != 0:
        raise PermissionDenied("unpacking a layer needs root (chroot)")
    _spread_subdirs(target)
    h = hashlib.sha256()
    size = 0
    head = read_head(src, _BUF)
    if not head:
        raise InvalidArgument("layer is empty (0 bytes): not a tar archive")
    dec = Decompressor(detect(head))
    sink: Callable[[bytes], None] | None = None
    if blob is not None:
        if dec.kind == NONE:
            return _apply_following(src, head, target, mode, blob=blob)
        sink = blob.write
    elif dec.kind == NONE:
        fd = _regular_file_from_start(src, len(head))
        if fd is not None:  # a stored blob, a local tar: the extractor reads it directly
            return _apply_following(src, head, target, mode, data_fd=fd)
    raw_sink = sink if dec.kind in RAW_KINDS else None
    plain_sink = sink if raw_sink is None else None
    # Uncompressed input: what the sink gets is what is hashed for the DiffID already.
    raw_h = hashlib.sha256() if raw_sink is not None and dec.kind != NONE else None
    raw_size = 0
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out, _Flusher(target) as flusher:
        proc = _spawn(target, mode, out, err)
        pipe_open = True
        try:
            chunk = head
            while chunk:
                plain = dec.feed(chunk)
                # The extractor is the slow stage (file creation in the kernel): it gets each
                # chunk first, and this thread stores and hashes it while the child unpacks
                # (hashlib and the writes release the GIL; the pipe holds several chunks).
                if plain and pipe_open:
                    try:
                        _write_all(proc.stdin.fileno(), plain)  # type: ignore[union-attr]
                    except BrokenPipeError:
                        # The child stopped (error or end of archive): keep hashing so the
                        # digest covers the whole stream; its exit status tells the rest.
                        pipe_open = False
                if raw_sink is not None:
                    raw_sink(chunk)
                    raw_size += len(chunk)
                    if raw_h is not None:
                        raw_h.update(chunk)
                if plain:
                    h.update(plain)
                    if plain_sink is not None:
                        plain_sink(plain)
                    size += len(plain)
                    flusher.progress(size)
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
        content_size = _result(proc, out, err)
    diff_id = "sha256:" + h.hexdigest()
    if raw_h is not None:
        sink_digest, sink_size = "sha256:" + raw_h.hexdigest(), raw_size
    else:
        sink_digest, sink_size = diff_id, size
    return Applied(
        diff_id, size, content_size, dec.kind, dec.kind if raw_sink else "none", sink_digest, sink_size
    )


def _regular_file_from_start(src: BinaryIO, consumed: int) -> int | None:
    """``src``'s descriptor if it is a regular file read from its start (``consumed`` bytes so
    far), so the extractor can read the same bytes from it; else None."""
    try:
        fd = src.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode) or src.tell() != consumed:
            return None
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return fd


def _apply_following(
    src: BinaryIO, head: bytes, target: Path, mode: str, *, blob: BlobFile | None = None,
    data_fd: int | None = None,
) -> Applied:
    """An uncompressed layer that the extractor reads from a file behind us: ``blob``, which
    we store it to, or ``data_fd``, the regular file ``src`` itself reads from its start.

    Each chunk is written to the blob and flushed (if any), then its new total goes down the
    control pipe (8 bytes), then it is hashed while the child copies it file to file. Closing
    the control pipe tells the child the file is complete; a child that stopped early (error)
    closes its end and we keep storing and hashing, as with the pipe. The child never reads
    past a total, so it extracts exactly the bytes hashed here."""
    h = hashlib.sha256()
    size = 0
    # One buffer for every chunk after the head, filled by readinto where ``src`` has it (the
    # API body, an archive member, a file): no bytes object (allocation, page faults) per MiB.
    into = getattr(src, "readinto", None)
    buf = memoryview(bytearray(_BUF)) if into is not None else None
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out, _Flusher(target) as flusher:
        ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
        try:
            if blob is not None:
                with open(blob.path, "rb") as data:
                    proc = _spawn(target, mode, out, err, data=data.fileno(), ctl=ctl_r)
            else:
                assert data_fd is not None
                proc = _spawn(target, mode, out, err, data=data_fd, ctl=ctl_r)
        finally:
            os.close(ctl_r)
        ctl_open = True
        try:
            chunk: bytes | memoryview = head
            while chunk:
                if blob is not None:
                    blob.write(chunk)  # copied out before the buffer is filled again
                    blob.flush()
                size += len(chunk)
                if ctl_open:
                    try:
                        _write_all(ctl_w, size.to_bytes(8, "little"))
                    except BrokenPipeError:
                        ctl_open = False
                h.update(chunk)
                flusher.progress(size)
                chunk = buf[: into(buf)] if into is not None and buf is not None else src.read(_BUF)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            os.close(ctl_w)
        content_size = _result(proc, out, err)
    diff_id = "sha256:" + h.hexdigest()
    return Applied(diff_id, size, content_size, NONE, NONE, diff_id, size)


def _result(proc: subprocess.Popen[bytes], out: BinaryIO, err: BinaryIO) -> int:
    """The extractor's exit: its content size, or ``InvalidArgument`` with its error line."""
    rc = proc.wait()
    if rc != 0:
        err.seek(0)
        msg = err.read().decode(errors="replace").strip().splitlines()
        raise InvalidArgument(msg[-1] if msg else f"layer extraction failed (status {rc})")
    out.seek(0)
    try:
        return int(out.read().decode().strip() or 0)
    except ValueError:
        return 0


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data``: a write to a pipe can be cut short when a signal reaches this thread
    (SIGCHLD, a profiler's), and the rest must follow, or the layer stream is corrupt."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _spawn(
    target: Path, mode: str, out: BinaryIO, err: BinaryIO, *, data: int | None = None, ctl: int | None = None
) -> subprocess.Popen[bytes]:
    """The chroot'd extractor, reading a pipe of ``_PIPE`` bytes (``_BUF`` where the kernel
    refuses a pipe that big), so a stall of this side's input (the API body) does not starve
    it at once; or, given ``data`` (a read-only fd of the blob file) and ``ctl`` (the control
    pipe's read end), following that file."""
    if data is not None and ctl is not None:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", _EXTRACTOR, str(target), mode, "--follow", str(ctl)],
            stdin=data, stdout=out, stderr=err, close_fds=True, pass_fds=(ctl,),
        )
    for size in (_PIPE, _BUF):
        try:
            return subprocess.Popen(
                [sys.executable, "-I", "-S", _EXTRACTOR, str(target), mode],
                stdin=subprocess.PIPE, stdout=out, stderr=err, bufsize=0, close_fds=True, pipesize=size,
            )
        except PermissionError:  # F_SETPIPE_SZ beyond fs.pipe-max-size without CAP_SYS_RESOURCE
            continue
    raise PermissionDenied("unpacking a layer: no pipe for the extractor")


class _Flusher:
    """Writes the extracted files back to disk while the extraction goes on.

    Every ``_FLUSH_EVERY`` bytes fed, a background thread runs one syncfs(2) of the target's
    filesystem (never two at once), so the disk works while the child creates files and the
    syncfs the image service does before recording the image finds little left. Only a head
    start: nothing here is a durability promise (see the module docstring)."""

    def __init__(self, target: Path) -> None:
        self._target = target
        self._next = _FLUSH_EVERY
        self._thread: threading.Thread | None = None

    def progress(self, fed: int) -> None:
        if fed < self._next:
            return
        self._next = fed + _FLUSH_EVERY
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=_syncfs, args=(self._target,), daemon=True,
                                            name="layer-writeback")
            self._thread.start()

    def __enter__(self) -> _Flusher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._thread.join()


_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def _spread_subdirs(target: Path) -> None:
    """Mark ``target`` a top of a directory hierarchy for ext4's allocator (``chattr +T``).

    ext4 puts a new directory's inode in its parent's block group, and a file's in its
    directory's; without a journal (this host's root filesystem) the inode allocator skips
    every inode freed in the last 5 minutes (``recently_deleted``), one by one, on each
    creation. A store that removes an image and loads it again (or any churn near it) makes
    each file creation scan past thousands of those: 0.3 ms of kernel CPU per file, most of a
    load's CPU. With the flag, the layer's top directories (usr, etc, ...) are spread over
    groups with free inodes (the Orlov policy /home gets), and what they hold is created
    there. The flag is not inherited and changes placement only; a filesystem without it
    (tmpfs, xfs) refuses and nothing changes."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
        flags = int.from_bytes(buf[:4], sys.byteorder)
        if not flags & _FS_TOPDIR_FL:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, (flags | _FS_TOPDIR_FL).to_bytes(4, sys.byteorder) + bytes(4))
    except OSError:
        pass  # not ext-like (ENOTTY, EOPNOTSUPP): placement is the filesystem's business
    finally:
        os.close(fd)


_libc: ctypes.CDLL | None = None


def _syncfs(path: Path) -> None:
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _libc.syncfs(fd)
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass  # a head start only: the image service's own sync is what counts
