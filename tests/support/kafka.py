"""librdkafka's mock cluster as the tests' Kafka: a real Kafka protocol peer on 127.0.0.1, started by a client
configured with `test.mock.num.brokers`; other clients connect to the addresses it reports. Closing that client
stops the cluster (and forgets its messages), as a broker outage does."""
import time

from confluent_kafka import Consumer, Producer


class MockCluster:
    """Its topics are created on first use with 4 partitions."""

    def __init__(self, brokers=1):
        self._host = Producer({"test.mock.num.brokers": brokers, "log_level": 0})
        metadata = self._host.list_topics(timeout=10)
        self.bootstrap = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())

    def stop(self):
        if self._host is not None:
            self._host.flush(1)
        self._host = None  # the last reference: librdkafka destroys the client and its mock brokers


def consume(bootstrap, topic, *, group, count, timeout=20.0):
    """Messages of `topic` read by consumer group `group` until `count` arrived (then a short wait for extras) or
    `timeout` passed: [(key, value bytes, partition, offset)]."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "log_level": 0})
    consumer.subscribe([topic])
    received, deadline, extra_until = [], time.monotonic() + timeout, None
    try:
        while time.monotonic() < (extra_until or deadline):
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            received.append((message.key().decode(), message.value(), message.partition(), message.offset()))
            consumer.commit(message=message, asynchronous=False)
            if len(received) >= count and extra_until is None:
                extra_until = time.monotonic() + 1.0
    finally:
        consumer.close()
    return received
