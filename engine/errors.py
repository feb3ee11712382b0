"""The one error class of clipmill.

Every problem a user can cause (bad file, bad window, bad argument) raises ClipmillError.
Messages name the file, the byte offset and the record where that applies, like klamath's.
"""
from __future__ import annotations


class ClipmillError(Exception):
    """A clear, user-facing error. ``file``, ``offset`` and ``record`` are kept as attributes."""

    def __init__(self, message: str, *, file: str | None = None, offset: int | None = None,
                 record: str | None = None):
        self.file, self.offset, self.record = file, offset, record
        where = []
        if file is not None:
            where.append(str(file))
        if offset is not None:
            where.append(f"byte offset {offset}")
        if record is not None:
            where.append(f"record {record}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.message = message

    def __reduce__(self):  # survives pickling between processes with its fields
        return (_rebuild, (self.message, self.file, self.offset, self.record))


def _rebuild(message, file, offset, record):
    return ClipmillError(message, file=file, offset=offset, record=record)
