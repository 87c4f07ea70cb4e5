"""The web server's settings (portal/gunicorn_config.py, issue 16): every worker listens on its own SO_REUSEPORT
socket so the kernel spreads keep-alive connections over all of them, and the demo runs with the same file."""
import sys

from gunicorn.app.wsgiapp import WSGIApplication

from web.management.commands.demo import serve_commands


def gunicorn_settings(monkeypatch, *arguments):
    """gunicorn's settings as `gunicorn <arguments> portal.wsgi` builds them (the config file read, flags on top);
    nothing is started or imported."""
    monkeypatch.setattr(sys, "argv", ["gunicorn", *arguments, "portal.wsgi"])
    return WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg


def test_the_portal_config_balances_connections_over_threaded_workers(monkeypatch):
    config = gunicorn_settings(monkeypatch, "--config", "python:portal.gunicorn_config")
    assert config.reuse_port is True
    assert config.worker_class_str == "portal.gunicorn_worker.PortalThreadWorker"
    assert (config.threads, config.keepalive) == (4, 5)


def test_without_the_config_gunicorn_shares_one_socket(monkeypatch):
    assert gunicorn_settings(monkeypatch).reuse_port is False


def test_flags_on_the_command_line_override_the_file(monkeypatch):
    assert gunicorn_settings(monkeypatch, "--config", "python:portal.gunicorn_config", "--threads", "8").threads == 8


def test_the_demo_web_server_runs_with_the_portal_config():
    web = serve_commands(8000)["web"]
    assert web[web.index("--config") + 1] == "python:portal.gunicorn_config"
