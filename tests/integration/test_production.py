"""Where production is, read from the records on a real broker."""

from __future__ import annotations

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, encode
from shadowtap.kafka import create_topics, make_producer
from shadowtap.production import Endpoint, production_endpoints, recent_records


def test_recent_records_name_production_from_the_end_of_each_partition(
    settings: Settings,
) -> None:
    create_topics(settings)
    producer = make_producer(settings.kafka)
    topic = settings.topics.mirror
    # An old host, pushed out of the recent window of its partition by later records.
    producer.produce(topic, encode(Envelope("GET", "/", host="old.example:81")), partition=0)
    for i in range(5):
        env = Envelope("GET", "/", host=f"127.0.0.1:{8000 + i % 2}")
        producer.produce(topic, encode(env), partition=i % 3)
    producer.produce(topic, b"not an envelope", partition=1)
    assert producer.flush(10) == 0

    seen = production_endpoints(recent_records(settings.kafka, topic, per_partition=2))
    assert seen == {Endpoint("127.0.0.1", 8000), Endpoint("127.0.0.1", 8001)}
