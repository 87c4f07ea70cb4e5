"""The Kafka client of the portal (confluent-kafka, librdkafka): its configuration from settings, one idempotent
producer per process, a publish that waits for the broker's delivery report, and the admin's connection check.

`kafka_publish` returns where the message landed (topic, partition, offset) only once the broker acknowledged it
(acks=all); anything else raises KafkaUnavailable, so a caller records a message as published only when it is.
The producer is idempotent (enable.idempotence): librdkafka's own retries within a publish never write a message
twice, and a partition keeps the order messages were produced in. Each publish waits at most
KAFKA_DELIVERY_TIMEOUT_SECONDS (message.timeout.ms) for its report, so a broker outage fails the publish, never
leaves a message queued in the producer to go out later beside the caller's retry.
"""
import json
import logging
import threading
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)
_producer_held = {}  # {"key": its configuration, "producer": Producer}; a changed KAFKA_* setting gets a new one
_lock = threading.Lock()


class KafkaUnavailable(Exception):
    """The publish was not acknowledged (broker down, timeout, refused): nothing may be recorded as published."""


@dataclass(frozen=True)
class Delivery:
    topic: str
    partition: int
    offset: int

    def as_json(self) -> dict:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


def value_bytes(value) -> bytes:
    """A message value as published: compact JSON in UTF-8, keys in the order given."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def kafka_configured() -> bool:
    return bool(settings.KAFKA_BROKERS.strip())


def runs_topic() -> str:
    return f"{settings.ORGANIZATION_ID}.runs"


def change_log_topic() -> str:
    return f"{settings.ORGANIZATION_ID}.change.log"


def client_config() -> dict:
    """The connection settings every client of the user's cluster shares (KAFKA_* settings)."""
    config = {"bootstrap.servers": settings.KAFKA_BROKERS, "security.protocol": settings.KAFKA_SECURITY_PROTOCOL,
              "client.id": f"portal-{settings.ORGANIZATION_ID}"}
    if settings.KAFKA_SASL_MECHANISM:
        config.update({"sasl.mechanism": settings.KAFKA_SASL_MECHANISM, "sasl.username": settings.KAFKA_SASL_USERNAME,
                       "sasl.password": settings.KAFKA_SASL_PASSWORD})
    if settings.KAFKA_SSL_CA_LOCATION:
        config["ssl.ca.location"] = settings.KAFKA_SSL_CA_LOCATION
    return config


def settings_shown() -> dict:
    """The Kafka settings as the admin shows them: the password only as set or not."""
    return {"brokers": settings.KAFKA_BROKERS or "(not set: Kafka is off)",
            "security.protocol": settings.KAFKA_SECURITY_PROTOCOL, "sasl.mechanism": settings.KAFKA_SASL_MECHANISM or "-",
            "sasl.username": settings.KAFKA_SASL_USERNAME or "-",
            "sasl.password": "(set)" if settings.KAFKA_SASL_PASSWORD else "-",
            "ssl.ca.location": settings.KAFKA_SSL_CA_LOCATION or "-", "runs topic": runs_topic(),
            "change log topic": change_log_topic()}


def _delivery_timeout_ms() -> int:
    return max(1000, int(float(settings.KAFKA_DELIVERY_TIMEOUT_SECONDS) * 1000))


def _producer_config() -> dict:
    timeout_ms = _delivery_timeout_ms()
    return {**client_config(), "enable.idempotence": True, "acks": "all", "linger.ms": 5,
            "message.timeout.ms": timeout_ms, "request.timeout.ms": min(30000, timeout_ms),
            "socket.timeout.ms": max(10, min(60000, timeout_ms))}


def _producer():
    """The process's producer for the current settings; one made for settings since changed is closed."""
    from confluent_kafka import Producer

    config = _producer_config()
    key = tuple(sorted(config.items()))
    with _lock:
        if _producer_held.get("key") != key:
            _producer_held.clear()
            # librdkafka's log lines (a broker that refuses connections, say) go to the portal's log.
            _producer_held.update(key=key, producer=Producer(config, logger=logger))
        return key, _producer_held["producer"]


def _forget(key):
    """A producer in a fatal state (idempotence broken) is replaced by a new one at the next publish."""
    with _lock:
        if _producer_held.get("key") == key:
            _producer_held.clear()


def kafka_publish(topic: str, key: str, value: bytes) -> Delivery:
    """Publish one message and wait for its delivery report: the Delivery, or KafkaUnavailable saying why."""
    (report,) = kafka_publish_many(topic, [(key, value)])
    if isinstance(report, KafkaUnavailable):
        raise report
    return report


def kafka_publish_many(topic: str, messages) -> list:
    """Publish [(key, value)] in order and wait for their reports: a Delivery or a KafkaUnavailable per message."""
    from confluent_kafka import KafkaException

    if not kafka_configured():
        raise KafkaUnavailable("KAFKA_BROKERS is not set")
    config_key, producer = _producer()
    reports = [None] * len(messages)

    def reporter(index):
        def report(error, message):
            if error is not None:
                if error.fatal():
                    _forget(config_key)
                reports[index] = KafkaUnavailable(f"{error.name()}: {error.str()}")
            else:
                reports[index] = Delivery(message.topic(), message.partition(), message.offset())
        return report

    for index, (key, value) in enumerate(messages):
        try:
            producer.produce(topic, key=key.encode(), value=value, on_delivery=reporter(index))
        except (KafkaException, BufferError) as exc:
            reports[index] = KafkaUnavailable(str(exc))
        producer.poll(0)
    producer.flush(_delivery_timeout_ms() / 1000 + 5)
    return [report if report is not None else KafkaUnavailable("no delivery report within the timeout")
            for report in reports]


def kafka_topics(timeout: float = 5.0) -> list:
    """The topics the cluster lists (the admin's connection check); KafkaUnavailable when it cannot be reached."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    if not kafka_configured():
        raise KafkaUnavailable("KAFKA_BROKERS is not set")
    try:
        metadata = AdminClient(client_config()).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(str(exc.args[0].str() if exc.args else exc)) from exc
    return sorted(metadata.topics)
