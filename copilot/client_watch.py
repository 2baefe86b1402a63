"""`dcopilot serve --clientProcessId=PID`: exit once the editor that started the server has gone.

An editor that is killed (not closed) may leave the server's stdin open, e.g. when a child of the editor
inherited the pipe; without this the server and its model would stay in memory. The process is polled
because Linux has no portable way to wait for a process that is not our child.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

log = logging.getLogger("dcopilot.daemon")

POLL_S = 1.0


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    if sys.platform == "win32":
        return True  # os.kill(pid, 0) would terminate the process there, not probe it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) S ...": the state follows the last ')' (comm may contain parentheses)
            return stat.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:  # no /proc (not Linux), or it exited just now
        return os.path.exists(f"/proc/{pid}") or not os.path.isdir("/proc")


def watch(pid: int, on_gone=None, poll_s: float = POLL_S) -> threading.Thread:
    """Poll `pid` on a daemon thread; when it has gone, call `on_gone` (default: end this process at once).
    Not on Windows, where there is no harmless probe: there the server still ends when its stdin closes."""

    def run() -> None:
        while alive(pid):
            time.sleep(poll_s)
        log.info("client process %d has gone: exiting", pid)
        (on_gone or _exit)()

    thread = threading.Thread(target=run, name=f"watch-client-{pid}", daemon=True)
    thread.start()
    return thread


def _exit() -> None:
    # The main thread may be blocked reading stdin that nobody will close; nothing is left to save.
    logging.shutdown()
    os._exit(0)
