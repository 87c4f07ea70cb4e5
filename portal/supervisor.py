"""Keeps a few long-running processes up: `make demo`'s web, Celery worker and beat.

A child that exits is started again after a delay that doubles on each quick exit (1 s, 2 s, 4 s … 30 s) and
starts over once a child has run for a minute; one child's crash never stops the others. SIGINT or SIGTERM
stops them all: SIGTERM to each child's process group, SIGKILL to what is left after the grace period.

Each child runs in a session (and process group) of its own, so Ctrl-C in the terminal reaches only the
supervisor, which then stops the children itself; and when a child dies, what it leaves behind in its group
(a SIGKILLed Celery worker's pool processes) is killed before the next one starts.
"""
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass

logger = logging.getLogger("portal.supervisor")

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 60.0  # a child that ran this long is restarted after FIRST_DELAY again
POLL_INTERVAL = 0.2


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = FIRST_DELAY
    restart_at: float = 0.0


def supervise(commands, *, env, stop_timeout=10.0):
    """Run each of commands ({name: argv}) until SIGINT or SIGTERM, restarting the ones that exit."""
    children = [Child(name, command) for name, command in commands.items()]
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            now = time.monotonic()
            for child in children:
                if child.process is None:
                    if now >= child.restart_at:
                        _start(child, env)
                elif (code := child.process.poll()) is not None:
                    _exited(child, code, now)
            time.sleep(POLL_INTERVAL)
    finally:
        _stop_all(children, stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(child, env):
    try:
        child.process = subprocess.Popen(child.command, env=env, start_new_session=True)
    except OSError as exc:
        _schedule_restart(child, f"could not start ({exc})", time.monotonic())
        return
    child.started_at = time.monotonic()
    logger.info("%s started (pid %s)", child.name, child.process.pid)


def _exited(child, code, now):
    _kill_group(child.process.pid, signal.SIGKILL)  # leftovers of the dead child
    if now - child.started_at >= STABLE_AFTER:
        child.delay = FIRST_DELAY
    child.process = None
    _schedule_restart(child, f"exited with code {code}", now)


def _schedule_restart(child, what, now):
    logger.warning("%s %s; restarting in %gs", child.name, what, child.delay)
    child.restart_at = now + child.delay
    child.delay = min(child.delay * 2, MAX_DELAY)


def _stop_all(children, timeout):
    running = [child.process for child in children if child.process is not None and child.process.poll() is None]
    for process in running:
        _kill_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _kill_group(process.pid, signal.SIGKILL)  # the group may outlive its leader
        process.wait()


def _kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
