"""Imported by the local engine's fork server only (its last preloaded module): the fork server
ends without Python's clean-up when the batch's driver exits.

The fork server has imported torch and the library; a clean interpreter shutdown of such a process
takes half a second (freeing every module), and the fork server holds the driver's standard output
and error open until it has ended, so a script that reads the command's output (``subprocess`` with
``capture_output``, a pipe, CI) waited that long after the batch had finished.  It holds nothing to
save: its workers have ended and it writes no file.  Imported by any other process, this module
does nothing."""

from __future__ import annotations

import atexit
import os
import sys


def _in_fork_server() -> bool:
    """Whether this import runs inside ``multiprocessing.forkserver.main`` (its preloading)."""
    from multiprocessing import forkserver

    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


def _end_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)


if _in_fork_server():
    atexit.register(_end_now)  # the fork server's last step: atexit runs before modules are freed
