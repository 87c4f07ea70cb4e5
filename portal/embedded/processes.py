"""Finding, waiting for and signalling the servers' processes (through psutil, so pid reuse is noticed)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil


def live_process(pid: int | None):
    """A live (non-zombie) psutil.Process for pid, else None."""
    if not pid or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def pid_alive(pid: int | None) -> bool:
    return live_process(pid) is not None


def works_in(proc, directory: Path) -> bool:
    """Whether proc's working directory is ``directory`` (how a server of ours is told from a reused pid)."""
    try:
        cwd = proc.cwd()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        try:
            return str(directory) in " ".join(proc.cmdline())
        except psutil.Error:
            return False
    return cwd in (str(directory), f"{directory} (deleted)")


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until the pids are gone (or zombies); return those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def terminate(pids: list[int], first: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    for sig in (first, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        pids = wait_gone(pids, timeout)
        if not pids:
            return
