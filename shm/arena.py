"""Arenas: many named numpy arrays in one shared-memory block (or one mapped file).

Layout of an arena's bytes (the same in /dev/shm and on disk, so a saved DBLoad maps back as is)::

    0   8  magic  b"CLIPMILL"
    8   4  format version (uint32, little endian)
    12  4  reserved
    16  8  header length H (uint64): JSON that follows at byte 64
    24  8  data start (uint64), a multiple of 64
    32 32  reserved
    64  H  JSON: {"arrays": [[name, dtype, shape, offset], ...], "meta": {...}}
    data start ...  arrays, each aligned to 64 bytes

Ownership (CPython shared_memory / PyTorch DataLoader style): the process that *creates* an arena
owns it and is the only one that unlinks it; other processes *attach* by name, get zero-copy views
and only close. Names travel between processes, never objects. Every block this process creates
is recorded in ``_OWNED`` and unlinked at interpreter exit, on SIGTERM and on Ctrl-C (see
``shm/cleanup.py``); if the owner is killed outright, Python's resource tracker (shared with forked
children) unlinks the block once the last process that inherited it is gone.
"""
from __future__ import annotations

import json
import mmap
import os
import secrets
import struct
from multiprocessing import shared_memory

import numpy as np

from engine.errors import ClipmillError
from shm import cleanup

MAGIC = b"CLIPMILL"
VERSION = 1
PREFIX = "clipmill_"
_FIXED = struct.Struct("<8sIIQQ32x")  # 64 bytes
ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def new_name(tag: str = "a") -> str:
    """A fresh block name, recognisable in /dev/shm as clipmill's."""
    return f"{PREFIX}{os.getpid()}_{tag}_{secrets.token_hex(4)}"


def create_block(size: int, tag: str = "a") -> shared_memory.SharedMemory:
    """Create a shared-memory block owned (and later unlinked) by this process."""
    shm = shared_memory.SharedMemory(name=new_name(tag), create=True, size=max(int(size), 1))
    cleanup.register(shm)
    return shm


def attach_block(name: str) -> shared_memory.SharedMemory:
    """Attach to a block created by another process (never unlinked from here)."""
    try:
        shm = shared_memory.SharedMemory(name=name, create=False)
    except FileNotFoundError:
        raise ClipmillError(f"shared-memory block {name!r} does not exist (owner gone?)") from None
    cleanup.untrack(shm)
    return shm


def _plan(specs):
    """specs: list of (name, dtype, shape) -> entries with offsets, data size."""
    entries, pos = [], 0
    for name, dtype, shape in specs:
        dt = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        entries.append([name, dt.str, list(shape), pos])
        pos = _align(pos + nbytes)
    return entries, pos


def _header_bytes(entries, meta, data_start=None, reserve=1024):
    js = json.dumps({"arrays": entries, "meta": meta}, separators=(",", ":")).encode()
    start = data_start if data_start is not None else _align(64 + len(js) + reserve)
    if 64 + len(js) > start:
        raise ClipmillError("arena header grew past its reserved space")
    return _FIXED.pack(MAGIC, VERSION, 0, len(js), start) + js, start


def _views(buf, entries, data_start, readonly=False):
    out = {}
    for name, dtype, shape, off in entries:
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        a = np.frombuffer(buf, dtype=dt, count=count, offset=data_start + off).reshape(shape)
        if readonly:
            a.flags.writeable = False
        out[name] = a
    return out


def _parse_header(buf, where: str):
    if len(buf) < 64:
        raise ClipmillError("too small to be a clipmill arena", file=where, offset=0)
    magic, version, _, hlen, start = _FIXED.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ClipmillError(f"not a clipmill arena (magic {magic!r})", file=where, offset=0)
    if version != VERSION:
        raise ClipmillError(f"arena format version {version}, this clipmill reads {VERSION}",
                            file=where, offset=8)
    if 64 + hlen > len(buf) or start > len(buf):
        raise ClipmillError("arena header runs past the end", file=where, offset=16)
    try:
        head = json.loads(bytes(buf[64:64 + hlen]))
    except ValueError as e:
        raise ClipmillError(f"arena header is not valid JSON ({e})", file=where, offset=64) from None
    for name, dtype, shape, off in head["arrays"]:
        end = start + off + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if end > len(buf):
            raise ClipmillError(f"array {name!r} runs past the end of the arena", file=where,
                                offset=start + off)
    return head["arrays"], head["meta"], start


class Arena:
    """Named arrays in one shared-memory block or one mapped file.

    ``arena[name]`` is a numpy view; ``arena.meta`` a JSON-able dict; ``arena.name`` the block name
    (None for a file arena). Use as a context manager, or call ``close()``.
    """

    def __init__(self, buf, entries, meta, data_start, *, shm=None, mm=None, owner=False,
                 path=None):
        self._shm, self._mm, self.owner, self.path = shm, mm, owner, path
        self.entries, self.meta, self.data_start = entries, meta, data_start
        # A file arena is mapped copy-on-write: its arrays are writeable numpy arrays (so numba
        # reuses the kernels compiled for shared-memory arenas instead of compiling read-only
        # variants), yet nothing ever reaches the file. The database is treated as read-only.
        self.arrays = _views(buf, entries, data_start)
        self.name = shm.name if shm is not None else None
        self.nbytes = len(buf)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(cls, specs, meta=None, tag="db", reserve=1024):
        """Empty arena with arrays ``specs = [(name, dtype, shape), ...]`` (zero-filled);
        ``reserve`` bytes of header room for meta written later (``write_meta``)."""
        meta = dict(meta or {})
        entries, data = _plan(specs)
        head, start = _header_bytes(entries, meta, reserve=reserve)
        shm = create_block(start + data, tag)
        shm.buf[:len(head)] = head
        return cls(shm.buf, entries, meta, start, shm=shm, owner=True)

    @classmethod
    def from_arrays(cls, arrays: dict, meta=None, tag="db"):
        """New arena holding copies of ``arrays`` (name -> ndarray)."""
        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        a = cls.create([(k, v.dtype, v.shape) for k, v in arrays.items()], meta, tag)
        for k, v in arrays.items():
            a.arrays[k][...] = v
        return a

    @classmethod
    def attach(cls, name: str):
        """Zero-copy attach to an arena created by another process."""
        shm = attach_block(name)
        entries, meta, start = _parse_header(shm.buf, name)
        return cls(shm.buf, entries, meta, start, shm=shm, owner=False)

    @classmethod
    def open_file(cls, path, writable=False):
        """Map a saved arena (an on-disk DBLoad): copy-on-write (the file is never changed)
        unless ``writable``, where writes go to the file."""
        path = os.fspath(path)
        try:
            f = open(path, "r+b" if writable else "rb")
        except OSError as e:
            raise ClipmillError(f"cannot open arena file ({e.strerror})", file=path) from None
        with f:
            size = os.fstat(f.fileno()).st_size
            if size < 64:
                raise ClipmillError("too small to be a clipmill arena", file=path, offset=0)
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_COPY)
        entries, meta, start = _parse_header(mm, path)
        return cls(mm, entries, meta, start, mm=mm, owner=writable, path=path)

    # -- use ------------------------------------------------------------------------------------
    def __getitem__(self, name):
        return self.arrays[name]

    def __contains__(self, name):
        return name in self.arrays

    def keys(self):
        return self.arrays.keys()

    def write_meta(self, meta=None) -> None:
        """Rewrite the header with ``meta`` (default: ``self.meta``) so that processes attaching
        from now on see it (owner of a shared block only; the header must fit its room)."""
        if self._shm is None or not self.owner:
            raise ClipmillError("only the owner of a shared-memory arena rewrites its header")
        if meta is not None:
            self.meta = meta
        head, _ = _header_bytes(self.entries, self.meta, self.data_start)
        self._shm.buf[:len(head)] = head

    def save(self, path, meta=None):
        """Write the arena's bytes to ``path`` (atomically), optionally with updated meta."""
        meta = self.meta if meta is None else meta
        head, start = _header_bytes(self.entries, meta, self.data_start)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(head)
            f.write(b"\0" * (start - len(head)))
            mv = memoryview(self._shm.buf if self._shm is not None else self._mm)
            f.write(mv[start:])
            mv.release()
        os.replace(tmp, path)

    def close(self):
        """Drop the views and the mapping; the owner of a shared block also unlinks it."""
        self.arrays = {}
        if self._shm is not None:
            shm, self._shm = self._shm, None
            try:
                shm.close()
            except BufferError:  # views still alive elsewhere: unlink anyway, memory freed later
                shm._mmap = None  # unmapped with its last view; stops SharedMemory.__del__ retrying
                try:
                    shm.close()   # closes the file descriptor
                except BufferError:
                    pass
            if self.owner:
                cleanup.unlink(shm)
        if self._mm is not None:
            mm, self._mm = self._mm, None
            try:
                mm.close()
            except BufferError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        kind = f"shm {self.name}" if self.name else f"file {self.path}"
        return f"<Arena {kind}: {len(self.entries)} arrays, {self.nbytes} bytes>"
