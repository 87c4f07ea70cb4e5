"""The demo's Celery worker outlives a restart of Redis while it holds a task it has not acknowledged yet (a
pending retry): it reconnects and runs what is sent afterwards. Celery 5.7.0 died there with
"AttributeError: 'NoneType' object has no attribute 'hostname'" (pyproject.toml keeps it out)."""
import re

from celery import Celery

from web.management.commands.demo import serve_commands
from tests.portal.processes import free_port, portal_env, start, stop, wait_for_line


def test_the_worker_survives_a_redis_restart_with_a_retry_pending(redis_server, tmp_path):
    log_path = tmp_path / "worker.log"
    env = portal_env(tmp_path, REDIS_URL=redis_server.url,
                     DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/portal")  # no task here needs it
    worker = start(serve_commands(free_port())["worker"], env=env, log_path=log_path)
    sender = Celery("sender", broker=redis_server.url)
    try:
        wait_for_line(log_path, r"celery@\S+ ready", process=worker)
        # A retry waiting for its countdown: received, held by the worker, not acknowledged.
        pending = sender.send_task("celery.accumulate", args=("later",), countdown=3600)
        wait_for_line(log_path, rf"Task celery\.accumulate\[{pending.id}\] received", process=worker)

        redis_server.stop()
        offset = wait_for_line(log_path, r"Connection to broker lost", process=worker).end()
        redis_server.start()
        wait_for_line(log_path, r"Connected to redis://", process=worker, after=offset)

        after = sender.send_task("celery.accumulate", args=("after the restart",))
        wait_for_line(log_path, rf"Task celery\.accumulate\[{after.id}\] succeeded", process=worker)
        assert worker.poll() is None
        assert not re.search(r"Unrecoverable error|CRITICAL", log_path.read_text())
    finally:
        sender.close()
        stop(worker)
