"""`make demo` supervises web, worker and beat (portal/supervisor.py): a killed worker is started again with a log
line while web and beat keep running, and SIGTERM (as Ctrl-C) stops every process."""
import os
import re
import signal
import subprocess
import sys

import psutil

from tests.portal.processes import free_port, portal_env, start, stop, wait_for_line


def started(log_path, name, process, after=0):
    match = wait_for_line(log_path, rf"{name} started \(pid (\d+)\)", process=process, after=after)
    return int(match.group(1)), match.end()


def gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_demo_restarts_a_killed_worker_and_stops_everything_on_sigterm(redis_server, tmp_path):
    log_path = tmp_path / "demo.log"
    env = portal_env(tmp_path, REDIS_URL=redis_server.url,
                     DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/portal")  # not needed to start
    demo = start([sys.executable, "manage.py", "demo", "--skip-setup", "--port", str(free_port())], env=env,
                 log_path=log_path)
    try:
        web, _ = started(log_path, "web", demo)
        beat, _ = started(log_path, "beat", demo)
        worker, offset = started(log_path, "worker", demo)
        wait_for_line(log_path, r"celery@\S+ ready", process=demo)
        pool = [child.pid for child in psutil.Process(worker).children(recursive=True)]

        os.kill(worker, signal.SIGKILL)
        wait_for_line(log_path, r"worker exited with code -9; restarting in 1s", process=demo, after=offset)
        new_worker, _ = started(log_path, "worker", demo, after=offset)
        assert new_worker != worker and not gone(new_worker)
        assert all(gone(pid) for pid in pool)  # the killed worker's pool went with it
        assert not gone(web) and not gone(beat)  # one crash never takes the others down
        survivors = [web, beat, new_worker] + [child.pid for pid in (web, new_worker)
                                               for child in psutil.Process(pid).children(recursive=True)]

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
        assert "Demo stopped." in log_path.read_text()
        assert [pid for pid in survivors if not gone(pid)] == []
        assert not re.search(r"(web|beat) exited", log_path.read_text())
    finally:
        stop(demo)


def test_restarts_back_off_and_start_over_after_a_child_ran_a_while(caplog):
    from portal.supervisor import STABLE_AFTER, Child, _exited

    child = Child("beat", ["true"])
    delays = []
    for ran_for in (0, 0, 0, 0, 0, 0, 0, STABLE_AFTER):
        child.process = subprocess.Popen(["true"], start_new_session=True)
        child.process.wait()
        child.started_at = 1000.0
        _exited(child, 3, 1000.0 + ran_for)
        assert child.process is None
        delays.append(child.restart_at - (1000.0 + ran_for))
    assert delays == [1, 2, 4, 8, 16, 30, 30, 1]
    assert caplog.messages[:2] == ["beat exited with code 3; restarting in 1s", "beat exited with code 3; restarting in 2s"]
