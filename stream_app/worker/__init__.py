"""The worker's edges: Faust wiring and its one adapter, the librdkafka publisher, model loading, metrics, health.

Thin code around :mod:`stream_app.core`; everything that talks to Kafka,
Faust or Prometheus lives here (and in the CLI above it).
"""
