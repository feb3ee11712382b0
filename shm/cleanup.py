"""No shared-memory block outlives its owner.

Shutdown, in one place:

1. Every block this process creates is recorded in ``_OWNED`` together with the creating pid.
2. ``unlink`` removes a block (only in the creating process: a forked child inherits the table but
   never unlinks its parent's blocks).
3. At interpreter exit (``atexit``) every block still recorded is unlinked. SIGTERM is turned into
   ``SystemExit`` and Ctrl-C is Python's ``KeyboardInterrupt``, so both unwind through ``finally``
   blocks and then atexit. Worker processes leave with ``os._exit`` and never run the parent's hooks.
4. SIGKILL of the owner runs none of that: then Python's resource tracker, a separate process that
   the owner and its forked workers share, unlinks every block it still has registered once the
   last of those processes has closed its end of the tracker's pipe.
5. Worker processes (run_windows): how they are stopped, and how they leave when the coordinator
   is signalled or killed, is the SHUTDOWN section of shm/pool.py.
"""
from __future__ import annotations

import atexit
import os
import signal
import threading

_OWNED: dict[str, tuple[int, object]] = {}
_LOCK = threading.Lock()
_installed = False


def register(shm) -> None:
    with _LOCK:
        _OWNED[shm.name] = (os.getpid(), shm)
    install()


def untrack(shm) -> None:
    """Called for attached (not owned) blocks. Nothing to do: forked attachers share the owner's
    resource tracker, whose registry is a set, so attaching adds nothing that outlives the owner."""


def unlink(shm) -> None:
    with _LOCK:
        entry = _OWNED.get(shm.name)
        if entry is None or entry[0] != os.getpid():
            return
        del _OWNED[shm.name]
    try:
        shm.unlink()
    except FileNotFoundError:
        pass


def owned_names() -> list[str]:
    with _LOCK:
        return [n for n, (pid, _) in _OWNED.items() if pid == os.getpid()]


def unlink_all() -> None:
    with _LOCK:
        items = [(n, s) for n, (pid, s) in _OWNED.items() if pid == os.getpid()]
    for _, shm in items:
        try:
            shm.close()
        except BufferError:       # views still alive: let the mapping die with them, close the fd
            shm._mmap = None
            try:
                shm.close()
            except BufferError:
                pass
        unlink(shm)


def forget_inherited() -> None:
    """In a freshly forked child: drop the parent's table (the child owns none of it)."""
    with _LOCK:
        _OWNED.clear()


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def install() -> None:
    """atexit hook, and SIGTERM -> SystemExit in the main thread (only if SIGTERM is untouched)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(unlink_all)
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:
            pass
