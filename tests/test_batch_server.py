"""The local engine's fork server ends without Python's clean-up once the driver has exited
(``xai_core.batch.server_exit``): a process reading the command's output is not kept waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from xai_core.batch.local import PRELOAD

SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, os
    context = mp.get_context("forkserver")
    context.set_forkserver_preload({preload!r})
    worker = context.Process(target=os.getpid)  # one worker forked: the server has preloaded
    worker.start()
    worker.join()
    print(worker.exitcode)
    """
)
MARKER = textwrap.dedent(
    """
    import atexit, os
    atexit.register(lambda: open(os.environ["MARKER_FILE"], "w").write(str(os.getpid())))
    """
)


@pytest.mark.parametrize("quick", [False, True], ids=["plain server", "with server_exit"])
def test_the_fork_server_skips_the_interpreter_s_clean_up(tmp_path, quick):
    """A module preloaded before ``server_exit`` registers a clean-up step (atexit) in the fork
    server: a plain server runs it when the driver exits; with ``server_exit`` the server ends first.
    ``subprocess.run`` returns once every holder of the output pipe, the server too, has ended."""
    (tmp_path / "marker_at_exit.py").write_text(MARKER)
    marker = tmp_path / "ran"
    preload = ["marker_at_exit", *(["xai_core.batch.server_exit"] if quick else [])]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(preload=preload)],
        capture_output=True, text=True, timeout=120, env=_environ(tmp_path, marker),
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
    assert marker.exists() is not quick  # the plain server's clean-up ran; server_exit's ended it before


def test_the_engine_preloads_server_exit_last_and_elsewhere_it_does_nothing(tmp_path):
    """Imported by a process that is no fork server, ``server_exit`` leaves its clean-up alone."""
    assert PRELOAD[-1] == "xai_core.batch.server_exit" and "xai_core.batch.runner" in PRELOAD
    (tmp_path / "marker_at_exit.py").write_text(MARKER)
    marker = tmp_path / "ran"
    script = "import marker_at_exit, xai_core.batch.server_exit"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=_environ(tmp_path, marker))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def _environ(folder, marker) -> dict[str, str]:
    """The environment with ``folder`` on the module path (the fork server, started by the script
    with a fresh interpreter, finds ``marker_at_exit`` there) and the marker file's path."""
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "MARKER_FILE": str(marker)}
