"""Ring: a fixed set of image slots in one shared-memory block, and who holds each slot.

The coordinator creates (and alone unlinks) the ring; forked workers use the inherited mapping.
Slot states are written by the coordinator only, which grants slots to workers one at a time, so no
lock is needed and a worker killed mid-write loses nothing but its grant::

    FREE --grant--> GRANTED(worker) --result--> READY --handed to caller--> HELD --release--> FREE
                                  \\--worker died--> FREE

Memory stays bounded by ``nslots * slot_bytes``: when every slot is READY or HELD (a slow caller),
workers wait for a grant. An image bigger than a slot is not written here (the pool sends it through
the worker's pipe instead).
"""
from __future__ import annotations

import numpy as np

from shm.arena import ALIGN, create_block
from shm import cleanup

FREE, GRANTED, READY, HELD = 0, 1, 2, 3
_HEAD = 64  # state int32[nslots] + owner int32[nslots] live in the first bytes, padded


class Ring:
    def __init__(self, nslots: int, slot_bytes: int):
        self.nslots = int(nslots)
        self.slot_bytes = (max(int(slot_bytes), 0) + ALIGN - 1) // ALIGN * ALIGN
        head = (8 * self.nslots + _HEAD - 1) // _HEAD * _HEAD
        self._shm = create_block(head + self.nslots * self.slot_bytes, tag="ring")
        self.name = self._shm.name
        buf = self._shm.buf
        self.state = np.frombuffer(buf, np.int32, self.nslots, 0)
        self.owner = np.frombuffer(buf, np.int32, self.nslots, 4 * self.nslots)
        self.data = np.frombuffer(buf, np.uint8, self.nslots * self.slot_bytes, head)
        self.state[:] = FREE
        self.owner[:] = -1
        self._free = list(range(self.nslots - 1, -1, -1))

    # -- coordinator side ----------------------------------------------------------------------
    def free_count(self) -> int:
        return len(self._free)

    def grant(self, worker: int) -> int | None:
        """Take a free slot for ``worker`` (None when none is free)."""
        if not self._free:
            return None
        s = self._free.pop()
        self.state[s], self.owner[s] = GRANTED, worker
        return s

    def ready(self, s: int) -> None:
        self.state[s] = READY

    def hold(self, s: int) -> None:
        self.state[s] = HELD

    def release(self, s: int) -> None:
        if self.state[s] != FREE:
            self.state[s], self.owner[s] = FREE, -1
            self._free.append(s)

    def reclaim(self, worker: int) -> list[int]:
        """Free every slot granted to a worker that died; returns them."""
        lost = [int(s) for s in np.nonzero((self.state == GRANTED) & (self.owner == worker))[0]]
        for s in lost:
            self.release(s)
        return lost

    # -- both sides ----------------------------------------------------------------------------
    def view(self, s: int, shape, dtype=np.uint8) -> np.ndarray:
        """The image in slot ``s`` (zero-copy)."""
        dt = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if n > self.slot_bytes:
            raise ValueError(f"{n} bytes do not fit a {self.slot_bytes}-byte slot")
        start = s * self.slot_bytes
        return self.data[start:start + n].view(dt).reshape(shape)

    def write(self, s: int, image: np.ndarray) -> bool:
        """Copy ``image`` into slot ``s``; False (nothing written) when it does not fit."""
        if image.nbytes > self.slot_bytes:
            return False
        self.view(s, image.shape, image.dtype)[...] = image
        return True

    def close(self) -> None:
        """Drop views; the creating process unlinks the block (others only close)."""
        self.state = self.owner = self.data = None
        shm, self._shm = self._shm, None
        if shm is None:
            return
        release_block(shm)


def release_block(shm) -> None:
    """Close our mapping of a block we created and unlink it. If views of it are still alive (a
    caller kept a copy=False image), the mapping is left to die with the last view: unlink anyway
    and close the file descriptor."""
    try:
        shm.close()
    except BufferError:
        shm._mmap = None          # the mmap object unmaps itself when its last view goes
        try:
            shm.close()
        except BufferError:
            pass
    cleanup.unlink(shm)
