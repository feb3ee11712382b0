"""Worker pool plumbing for run_windows: fork, pin, per-worker queues in shared memory, work
stealing, slot grants, liveness and shutdown. Generic: a worker runs ``task(i) -> (image, payload)``
for item indexes ``i``; engine/api.py supplies the task (explode + rasterize one window).

Pieces
------
* ``Queues``: one shared-memory block (``clipmill_<pid>_queue_*``) holding one int64 queue per
  worker (its share of the items, in locality order) plus an *orphan* queue for redone items, the
  head/tail of each, ``claimed[w]`` (the item worker ``w`` is working on) and a stop flag. Each
  queue is guarded by a POSIX record lock (``fcntl.lockf`` on byte ``q`` of the block's file): the
  kernel drops such a lock when its holder dies, so a worker killed by SIGKILL inside a claim
  cannot wedge the others. A worker takes from the head of its own queue, then from the orphan
  queue, then steals from the tail of the busiest other queue. ``claimed[w]`` is written before
  the head/tail moves, so an item is always in a queue, claimed, or delivered.
* Slots of the ring (shm/ring.py) are *granted* by the coordinator through each worker's own
  socket pair; a worker that has an image but no grant waits (backpressure from a slow caller).
  An image larger than a slot travels through the socket instead (the overflow path).
* The coordinator waits on every worker's socket and process sentinel. A worker that dies
  (SIGKILL, crash) is noticed there: its socket is drained (results it sent still count), its
  granted slots are freed, its claimed item goes to the orphan queue (an item whose workers died
  ``MAX_ATTEMPTS`` times comes back as an error result instead) and a replacement worker is forked
  with the same queue. The coordinator delivers each item exactly once (later duplicates are
  dropped).

SHUTDOWN
--------
This extends the note in shm/cleanup.py (blocks: who unlinks what, atexit, SIGTERM -> SystemExit,
SIGKILL -> resource tracker); here is what happens to the *processes*:

1. ``Pool.close()`` (called from run_windows' ``finally``: normal end, ``break``/``close()`` of
   the iterator, its garbage collection, an exception, SIGTERM turned into SystemExit, Ctrl-C's
   KeyboardInterrupt) sets the shared stop flag, sends "stop" to every worker, waits up to
   ``grace`` seconds, SIGKILLs any worker still there, reaps them all, then unlinks the queue and
   ring blocks (the coordinator created them; workers never unlink). Pools still open at
   interpreter exit are closed by an atexit hook registered *after* shm.cleanup's, so it runs
   before the blocks are unlinked.
2. Workers: after fork they drop the parent's ownership table (``cleanup.forget_inherited``),
   ignore SIGINT (a terminal's Ctrl-C reaches the whole process group; the coordinator alone
   handles it and then stops them), take SIGTERM's default action (die; the coordinator notices),
   close every socket end that is not theirs and always leave through ``os._exit`` (no atexit, no
   finalizers, no unlinking). SIGINT/SIGTERM are blocked in the coordinator around each fork so
   no signal lands in a child before its handlers are set.
3. Coordinator killed outright (SIGKILL): workers see ``os.getppid()`` change or EOF on their
   socket (they poll both at least every ``POLL`` seconds while waiting and between windows) and
   exit by themselves; the last one gone lets the resource tracker unlink the blocks.
"""
from __future__ import annotations

import atexit
import fcntl
import multiprocessing as mp
import os
import signal
import time
import weakref
from multiprocessing.connection import wait as mp_wait

import numpy as np
import psutil

from engine.errors import ClipmillError
from shm import cleanup
from shm.arena import create_block
from shm.ring import release_block

POLL = 0.2          # seconds between liveness checks while a worker waits
MAX_ATTEMPTS = 2    # an item whose worker died this many times is reported as an error
_FORK = mp.get_context("fork")


def usable_cpus() -> list[int]:
    try:
        return sorted(psutil.Process().cpu_affinity())
    except (AttributeError, psutil.Error):  # platforms without affinity
        return list(range(os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------------
class Queues:
    """Per-worker item queues + orphan queue in one shared block, guarded by record locks."""

    def __init__(self, shares: list[np.ndarray]):
        self.nq = len(shares)                       # worker queues; queue nq is the orphan queue
        n = int(sum(len(s) for s in shares))
        caps = [len(s) for s in shares] + [2 * n + 16]
        nmeta = 4 * (self.nq + 1) + self.nq + 1
        total = nmeta + sum(caps)
        self._shm = create_block(8 * total, tag="queue")
        self.name = self._shm.name
        a = np.frombuffer(self._shm.buf, np.int64, total)
        q1 = self.nq + 1
        self.start, self.cap = a[0:q1], a[q1:2 * q1]
        self.head, self.tail = a[2 * q1:3 * q1], a[3 * q1:4 * q1]
        self.claimed = a[4 * q1:4 * q1 + self.nq]
        self.stop = a[4 * q1 + self.nq:nmeta]
        self.items = a[nmeta:]
        self.start[:] = np.concatenate([[0], np.cumsum(caps)[:-1]])
        self.cap[:] = caps
        self.head[:] = 0
        self.tail[:] = caps[:-1] + [0]
        self.claimed[:] = -1
        self.stop[0] = 0
        for q, s in enumerate(shares):
            self.items[self.start[q]:self.start[q] + len(s)] = s
        self._fd = os.open(f"/dev/shm/{self.name}", os.O_RDWR)

    def _lock(self, q):
        fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, q)

    def _unlock(self, q):
        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, q)

    def _pop(self, q, w, back=False) -> int:
        if self.tail[q] <= self.head[q]:
            return -1
        self._lock(q)
        try:
            if self.tail[q] <= self.head[q]:
                return -1
            if back:
                item = int(self.items[self.start[q] + self.tail[q] - 1])
                self.claimed[w] = item
                self.tail[q] -= 1
            else:
                item = int(self.items[self.start[q] + self.head[q]])
                self.claimed[w] = item
                self.head[q] += 1
            return item
        finally:
            self._unlock(q)

    def claim(self, w: int) -> int:
        """Next item for worker ``w``: own queue, orphans, then steal from the busiest; -1 if none."""
        for q in (w, self.nq):
            item = self._pop(q, w)
            if item >= 0:
                return item
        while True:
            sizes = self.tail[:self.nq] - self.head[:self.nq]
            v = int(np.argmax(sizes))
            if sizes[v] <= 0:
                return -1
            item = self._pop(v, w, back=True)
            if item >= 0:
                return item

    def pending(self) -> int:
        return int((self.tail - self.head).sum())

    def requeue(self, items) -> None:
        """Coordinator: append ``items`` to the orphan queue (compacting it first)."""
        q = self.nq
        self._lock(q)
        try:
            s, h, t = int(self.start[q]), int(self.head[q]), int(self.tail[q])
            live = self.items[s + h:s + t].copy()
            new = np.concatenate([live, np.asarray(items, np.int64)])
            if len(new) > self.cap[q]:
                raise ClipmillError("internal: orphan queue overflow")
            self.items[s:s + len(new)] = new
            self.head[q], self.tail[q] = 0, len(new)
        finally:
            self._unlock(q)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.start = self.cap = self.head = self.tail = self.claimed = self.stop = self.items = None
        shm, self._shm = self._shm, None
        if shm is not None:
            release_block(shm)


# ---------------------------------------------------------------------------------------------
class _Worker:
    __slots__ = ("w", "proc", "conn", "grants", "idle", "alive", "pid")

    def __init__(self, w, proc, conn):
        self.w, self.proc, self.conn = w, proc, conn
        self.grants, self.idle, self.alive, self.pid = [], False, True, proc.pid


def _worker_main(w, conn, others, queues, ring, task_factory, cpu, parent):
    """Body of a forked worker. Never returns: leaves through os._exit."""
    code = 0
    try:
        cleanup.forget_inherited()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        for c in others:
            try:
                c.close()
            except OSError:
                pass
        if cpu is not None:
            try:
                psutil.Process().cpu_affinity([cpu])
            except (psutil.Error, OSError, ValueError):
                pass
        task = task_factory()
        grants = []

        def gone():
            return os.getppid() != parent or queues.stop[0] != 0

        def wait_msg():
            """One message from the coordinator; None when we should leave."""
            while True:
                if gone():
                    return None
                if conn.poll(POLL):
                    try:
                        msg = conn.recv()
                    except (EOFError, OSError):
                        return None
                    if msg[0] == "s":
                        return None
                    if msg[0] == "g":
                        grants.append(msg[1])
                    return msg

        conn.send(("ready", w, os.getpid()))
        while not gone():
            i = queues.claim(w)
            if i < 0:
                conn.send(("idle", w))
                while True:
                    msg = wait_msg()
                    if msg is None or msg[0] == "w":
                        break
                if msg is None:
                    break
                continue
            image, payload = task(i)
            while not grants:
                if wait_msg() is None:
                    raise SystemExit(0)
            slot = grants.pop(0)
            shape = dtype = overflow = None
            if isinstance(image, np.ndarray):
                shape, dtype = image.shape, image.dtype.str
                if ring is None or not ring.write(slot, image):
                    overflow = image
            elif image is not None:   # not an array (a custom compute's Polygons): pickled
                overflow = image
            conn.send(("r", w, i, slot, shape, dtype, payload, overflow))
            queues.claimed[w] = -1
    except SystemExit:
        pass
    except BaseException:  # noqa: BLE001 - a worker reports and dies; the coordinator redoes
        code = 1
        try:
            import traceback
            conn.send(("fatal", w, traceback.format_exc(limit=8)))
        except Exception:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


# ---------------------------------------------------------------------------------------------
_LIVE: "weakref.WeakSet[Pool]" = weakref.WeakSet()
_atexit_done = False


def _close_live_pools():
    for p in list(_LIVE):
        p.close()


class Pool:
    """Coordinator side. ``results()`` yields ``("r", w, i, slot, shape, dtype, payload, overflow)``
    once per item (or ``("dead", i, message)`` for an item that killed its workers), in completion
    order; the caller passes each slot back with ``release(slot)``."""

    def __init__(self, n_items, shares, task_factory, ring=None, *, pin=True, cpus=None,
                 grace=2.0, max_respawns=None):
        global _atexit_done
        self.n_items = int(n_items)
        self.ring = ring
        self.queues = Queues(shares)
        if not _atexit_done:  # after shm.cleanup's hook (create_block above installed it)
            atexit.register(_close_live_pools)
            _atexit_done = True
        _LIVE.add(self)
        self.task_factory = task_factory
        self.nworkers = len(shares)
        cpus = usable_cpus() if cpus is None else list(cpus)
        self.cpus = [cpus[w % len(cpus)] for w in range(self.nworkers)] if pin else [None] * self.nworkers
        self.grace = grace
        self.max_respawns = 2 * self.nworkers + 2 if max_respawns is None else max_respawns
        self.respawns = 0
        self.delivered = np.zeros(self.n_items, dtype=bool)
        self.attempts = np.zeros(self.n_items, dtype=np.int32)
        self.remaining = self.n_items
        self.workers: list[_Worker] = []
        self.deaths: list[tuple[int, int, int | None]] = []   # (worker, pid, exitcode)
        self.closed = False
        self._fatal = None
        try:
            for w in range(self.nworkers):
                self.workers.append(self._spawn(w))
        except BaseException:        # a failed fork (or a signal meanwhile): stop those started
            self.close()
            raise

    # -- processes ------------------------------------------------------------------------------
    def _spawn(self, w) -> _Worker:
        mine, theirs = _FORK.Pipe(duplex=True)
        others = [x.conn for x in getattr(self, "workers", []) if x.alive] + [mine]
        proc = _FORK.Process(target=_worker_main, daemon=True, name=f"clipmill-worker-{w}",
                             args=(w, theirs, others, self.queues, self.ring, self.task_factory,
                                   self.cpus[w], os.getpid()))
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        theirs.close()
        wk = _Worker(w, proc, mine)
        self.queues.claimed[w] = -1
        return wk

    def pids(self) -> list[int]:
        return [x.pid for x in self.workers if x.alive]

    def _send(self, wk, msg) -> None:
        try:
            wk.conn.send(msg)
        except (OSError, ValueError):
            pass

    def _grant(self, wk) -> bool:
        if self.ring is None:
            s = getattr(self, "_tokens", 0)
            if s >= self._token_limit:
                return False
            self._tokens = s + 1
            wk.grants.append(-1)
            self._send(wk, ("g", -1))
            return True
        s = self.ring.grant(wk.w)
        if s is None:
            return False
        wk.grants.append(s)
        self._send(wk, ("g", s))
        return True

    def _top_up(self) -> None:
        """Give a slot to every live worker that holds none (fewest-grants first)."""
        for wk in self.workers:
            if wk.alive and not wk.grants:
                if not self._grant(wk):
                    return

    def release(self, slot) -> None:
        if self.ring is None:
            self._tokens -= 1
        elif slot is not None and slot >= 0:
            self.ring.release(slot)
        self._top_up()

    def _wake_idle(self) -> None:
        for wk in self.workers:
            if wk.alive and wk.idle:
                wk.idle = False
                self._send(wk, ("w",))

    # -- deaths ---------------------------------------------------------------------------------
    def _on_death(self, wk, out) -> None:
        """A worker is gone: drain its socket, free its slots, redo its item, respawn."""
        wk.alive = False
        while True:
            try:
                if not wk.conn.poll(0):
                    break
                self._on_message(wk, wk.conn.recv(), out)
            except (EOFError, OSError):
                break
        wk.conn.close()
        wk.proc.join(1.0)
        self.deaths.append((wk.w, wk.pid, wk.proc.exitcode))
        if self.ring is not None:
            self.ring.reclaim(wk.w)
        else:
            self._tokens -= len(wk.grants)
        wk.grants = []
        item = int(self.queues.claimed[wk.w])
        self.queues.claimed[wk.w] = -1
        if item >= 0 and not self.delivered[item]:
            self.attempts[item] += 1
            if self.attempts[item] >= MAX_ATTEMPTS:
                self.delivered[item] = True
                self.remaining -= 1
                code = wk.proc.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                out.append(("dead", item, f"worker process died ({how}) while on this item, "
                                          f"{self.attempts[item]} times"))
            else:
                self.queues.requeue([item])
        if self._fatal is not None:
            return
        if self.remaining > 0 and self.respawns < self.max_respawns:
            self.respawns += 1
            new = self._spawn(wk.w)
            self.workers[self.workers.index(wk)] = new
        elif self.remaining > 0 and not any(x.alive for x in self.workers):
            self._fatal = (f"every worker process died ({len(self.deaths)} deaths, respawn "
                           f"limit {self.max_respawns} reached)")
        self._wake_idle()
        self._top_up()

    def _on_message(self, wk, msg, out) -> None:
        kind = msg[0]
        if kind == "r":
            _, w, i, slot, *_ = msg
            if slot in wk.grants:
                wk.grants.remove(slot)
            if self.delivered[i]:            # a duplicate after a death: drop it
                self.release(slot)
                return
            self.delivered[i] = True
            self.remaining -= 1
            if self.ring is not None and slot >= 0:
                self.ring.ready(slot)
            out.append(msg)
            self._top_up()
        elif kind == "idle":
            wk.idle = True
            if self.queues.pending() > 0:
                self._wake_idle()
        elif kind == "fatal":
            self._fatal = f"worker {msg[1]} failed:\n{msg[2]}"
        # "ready": nothing to do

    # -- main loop ------------------------------------------------------------------------------
    def results(self, timeout=None):
        """Yield every item's message once. Raises ClipmillError if the pool cannot finish."""
        if self.ring is None:
            self._tokens, self._token_limit = 0, 2 * self.nworkers + 2
        self._top_up()
        out: list = []
        t_last = time.monotonic()
        while self.remaining > 0 or out:
            while out:
                msg = out.pop(0)
                yield msg
            if self.remaining <= 0:
                break
            if self._fatal is not None:
                raise ClipmillError(self._fatal)
            live = [wk for wk in self.workers if wk.alive]
            ready = mp_wait([wk.conn for wk in live] + [wk.proc.sentinel for wk in live], POLL)
            if not ready:
                if timeout is not None and time.monotonic() - t_last > timeout:
                    raise ClipmillError(f"no result for {timeout} s")
                continue
            t_last = time.monotonic()
            for wk in live:
                if not wk.alive:
                    continue
                dead = wk.proc.sentinel in ready
                if wk.conn in ready:
                    try:
                        while wk.conn.poll(0):
                            self._on_message(wk, wk.conn.recv(), out)
                    except (EOFError, OSError):
                        dead = True
                if dead:
                    self._on_death(wk, out)

    # -- shutdown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop workers (stop flag + message, grace period, then SIGKILL), reap, unlink blocks."""
        if self.closed:
            return
        self.closed = True
        _LIVE.discard(self)
        if self.queues.stop is not None:
            self.queues.stop[0] = 1
        live = [wk for wk in self.workers if wk.alive]
        for wk in live:
            self._send(wk, ("s",))
        deadline = time.monotonic() + self.grace
        for wk in live:
            wk.proc.join(max(0.0, deadline - time.monotonic()))
        for wk in live:
            if wk.proc.is_alive():
                try:
                    wk.proc.kill()
                except OSError:
                    pass
                wk.proc.join(2.0)
            wk.alive = False
            try:
                wk.conn.close()
            except OSError:
                pass
        self.queues.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
