import pytest

from tests.portal.processes import ThrowawayRedis, free_port


@pytest.fixture
def redis_server():
    """A Redis of the test's own, on a free port, which the test may stop and start."""
    server = ThrowawayRedis(free_port())
    server.start()
    yield server
    server.stop()
