"""The README's Kafka consumer example, as printed there, end to end: a KAFKA run published to librdkafka's mock
cluster, the example (in its own process) reads it and reports SUCCESS to the portal on `live_server`."""
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import TestCase

from actions.choices import RunStatus
from actions.models import Run
from actions.tasks import run_dispatch_task
from tests.factories import ActionFactory, ApiClientFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_consumer() -> str:
    text = README.read_text()
    section = text[text.index("A consumer of a KAFKA action that reports SUCCESS"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_consumer_reports_success(live_server, kafka_cluster, tmp_path):
    admin = UserFactory(email="platform@example.com", admin=True)
    credential = ApiClientFactory(user=admin)
    code = readme_consumer()
    assert len(code.strip().splitlines()) <= 20
    code = (code.replace("https://portal.example.com", live_server.url)
            .replace('{"clientId": "...", "clientSecret": "..."}',
                     f'{{"clientId": "{credential.client_id}", "clientSecret": "{credential.secret}"}}')
            .replace("kafka-1:9092", kafka_cluster.bootstrap))
    action = ActionFactory(identifier="deploy", trigger_type="self-service", operation="CREATE",
                           trigger={"type": "self-service", "operation": "CREATE",
                                    "userInputs": {"properties": {}, "required": []}},
                           invocation_method={"type": "KAFKA", "topic": "deploys"})
    run = RunFactory(id="r_readme", action=action, status=RunStatus.IN_PROGRESS, origin="API", requested_by=admin,
                     properties={"branch": "main"})
    with TestCase.captureOnCommitCallbacks(execute=True):
        run_dispatch_task(run.id)
    (tmp_path / "consumer.py").write_text(code)

    process = subprocess.Popen([sys.executable, str(tmp_path / "consumer.py")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Run.objects.get(pk=run.pk).status == RunStatus.IN_PROGRESS:
            time.sleep(0.5)
    finally:
        process.kill()
        output = process.communicate()[0]
    run.refresh_from_db()
    assert (run.status, run.summary) == (RunStatus.SUCCESS, "deployed"), output[-2000:]
    assert "deploying {'branch': 'main'}" in output
