"""Fixtures of the Ocean tests: the venv with `port-ocean` (tests/ocean/ocean_venv.py), an admin's machine
credential for the integration, the source file our integration (tests/ocean/portal_fake) serves, and a way
to run it as a subprocess against `live_server`."""
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.factories import ApiClientFactory, UserFactory
from tests.ocean import ocean_venv
from tests.support.ocean import INTEGRATION_ID

INTEGRATION_DIR = Path(__file__).parent / "portal_fake"


@pytest.fixture(scope="session")
def ocean_python():
    python = ocean_venv.ensure_venv()
    if python is None:
        pytest.skip("No Python >= 3.12 on this machine (pyenv's or on PATH): Ocean (port-ocean) needs it.")
    return python


@pytest.fixture
def credential(transactional_db):
    """The integration authenticates as an ordinary API client: an admin's machine credential."""
    admin = UserFactory(email="ocean-admin@example.com", admin=True)
    client = ApiClientFactory(user=admin)
    return client.client_id, client.secret


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.json"

    def write(teams, services):
        path.write_text(json.dumps({"teams": teams, "services": services}))
        return path

    write.path = path
    return write


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OceanProcess:
    """Our integration run by Ocean as a subprocess, its output kept for the failure message."""

    def __init__(self, python, env, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        code = f"from port_ocean import run; run(port={_free_port()}, log_level='DEBUG')"
        self.process = subprocess.Popen([str(python), "-c", code], cwd=INTEGRATION_DIR, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        self.log.flush()
        return Path(self.log_path).read_text(errors="replace")[-6000:]

    def wait(self, timeout):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"Ocean did not finish within {timeout}s:\n{self.output()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def run_ocean(ocean_python, credential, source, live_server, tmp_path):
    """Start our integration with the given event listener (ONCE by default); returns its OceanProcess."""
    started = []

    def start(listener="ONCE", **extra_env):
        client_id, secret = credential
        env = {key: value for key, value in os.environ.items() if not key.startswith(("OCEAN__", "DJANGO"))}
        env.update({
            "OCEAN__PORT__CLIENT_ID": client_id, "OCEAN__PORT__CLIENT_SECRET": secret,
            "OCEAN__PORT__BASE_URL": live_server.url, "OCEAN__INTEGRATION__IDENTIFIER": INTEGRATION_ID,
            "OCEAN__EVENT_LISTENER__TYPE": listener, "OCEAN__INITIALIZE_PORT_RESOURCES": "true",
            "PORTAL_FAKE_SOURCE": str(source.path), **extra_env,
        })
        process = OceanProcess(ocean_python, env, tmp_path / f"ocean-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
