"""The pure core: decode, event time, windows, ingest, features, the day step, outcomes, calibration state, the state store.

Arrays and bytes in, arrays and bytes out: no Faust, aiokafka,
confluent_kafka or prometheus_client, however deep
(``tests/unit/test_layers.py`` checks it). The worker, the offline replays
and the evaluation all run this code.
"""
