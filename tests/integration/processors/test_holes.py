"""HoleReader on the real broker: committed offsets, and records read back by offset."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from shadowtap.config import Settings
from shadowtap.kafka import create_topics, make_consumer, make_producer
from shadowtap.processors.holes import HoleReader


def test_hole_reader_reads_back_by_offset_and_knows_the_groups_position(
    settings: Settings,
) -> None:
    create_topics(settings)
    topic = settings.topics.captured
    producer = make_producer(settings.kafka)
    for i in range(30):
        producer.produce(topic, b"v%d" % i, key=b"k%d" % i, partition=1)
    assert producer.flush(30) == 0
    reader = HoleReader(settings, "hole-group", timeout_s=20)
    try:
        assert reader.committed((topic, 1)) == 0  # nothing committed: the log start

        records, covered = reader.read((topic, 1), 10, 14)
        assert [(r.offset, r.key, r.value) for r in records] == [
            (o, b"k%d" % o, b"v%d" % o) for o in range(10, 14)
        ]
        assert covered == 14
        # Past the end of the log: nothing there, nothing waited for.
        records, covered = reader.read((topic, 1), 28, 40)
        assert [r.offset for r in records] == [28, 29] and covered == 40

        group = make_consumer(settings.kafka, "hole-group")
        group.commit(offsets=[TopicPartition(topic, 1, 17)], asynchronous=False)
        group.close()
        assert reader.committed((topic, 1)) == 17
    finally:
        reader.close()
