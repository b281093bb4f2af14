"""Capture: middleware and collectors that copy production requests to Kafka.

Imports only the standard library, confluent-kafka and orjson: installing the middleware
into a production app must not pull in the processor's or replayer's dependencies.
"""
