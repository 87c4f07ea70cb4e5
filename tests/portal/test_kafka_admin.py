"""The admin's Kafka page: the settings (password only as set), the organization's settings, and "Test connection"
against librdkafka's mock cluster (tests/support/kafka.py), an address nothing listens on, and no brokers at all."""
import pytest
from confluent_kafka import Producer
from django.urls import reverse

import portal.admin
from portal.models import OrganizationSettings
from tests.support.admin import url
from tests.support.kafka import MockCluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def kafka_admin(client, admin_user, settings, monkeypatch):
    monkeypatch.setattr(portal.admin, "KAFKA_TEST_TIMEOUT_SECONDS", 1.0)
    settings.KAFKA_SASL_MECHANISM, settings.KAFKA_SASL_USERNAME = "SCRAM-SHA-512", "portal"
    settings.KAFKA_SASL_PASSWORD = "kafka-password-secret"
    client.force_login(admin_user)
    return client


def connection_messages(client):
    response = client.post(reverse("admin:portal_kafka_test"), follow=True)
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_the_page_shows_the_settings_but_not_the_password(kafka_admin, settings):
    settings.KAFKA_BROKERS = "kafka-1.internal:9093"
    OrganizationSettings.objects.create(settings={"portAgentStreamerName": "KAFKA"})
    html = kafka_admin.get(url(OrganizationSettings, "changelist")).content.decode()

    assert "kafka-1.internal:9093" in html and "SCRAM-SHA-512" in html and "portal.runs" in html
    assert "kafka-password-secret" not in html and "(set)" in html
    assert "portAgentStreamerName" in html and 'value="Test connection"' in html


def test_test_connection_lists_the_topics(kafka_admin, settings):
    cluster = MockCluster()
    try:
        settings.KAFKA_BROKERS = cluster.bootstrap
        producer = Producer({"bootstrap.servers": cluster.bootstrap})
        producer.produce("portal.runs", b"x")
        producer.flush(10)
        assert connection_messages(kafka_admin) == [f"Connected to {cluster.bootstrap}: 1 topic: portal.runs."]
    finally:
        cluster.stop()


def test_test_connection_says_why_it_failed(kafka_admin, settings):
    settings.KAFKA_BROKERS = "127.0.0.1:1"  # nothing listens there
    (message,) = connection_messages(kafka_admin)
    assert message.startswith("Kafka is not reachable: ")

    settings.KAFKA_BROKERS = ""
    assert connection_messages(kafka_admin) == ["Kafka is not reachable: KAFKA_BROKERS is not set"]


def test_only_staff_may_see_or_test(client, member_user):
    client.force_login(member_user)
    assert client.get(url(OrganizationSettings, "changelist")).status_code == 302  # to the admin's login
    assert client.post(reverse("admin:portal_kafka_test")).status_code == 302
