"""The ``trendcast`` command and its tools: one module per command group (``main`` wires them).

The top layer: it may import anything below (the worker, the offline
tools, the core, ``models``); nothing imports it.
"""
