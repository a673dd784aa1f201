"""Data at rest: event files, real datasets through their adapters, offline aggregation by the worker's rules, training samples.

Imports the core (decode, clock, windows) and ``models``; nothing here
talks to Kafka, Faust or Prometheus.
"""
