"""Shared-memory layer of clipmill: arenas, ring buffer, worker-pool plumbing."""
from shm.arena import Arena, attach_block, create_block

__all__ = ["Arena", "attach_block", "create_block"]
