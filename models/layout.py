"""The feature layout the worker and the models agree on: history channels, their order, the spec version.

The worker's windows (``stream_app/core/windows.py``) write daily histories in
this channel order, and the network, the baselines, the training panel and
the evaluation read them by these indices, so the layout is stated once,
here, below both. A checkpoint records :data:`FEATURE_SPEC_VERSION`; a
worker refuses one of another version.
"""

from __future__ import annotations

# 2: histories carry order lines per day (channel 5) and the network reads them; 1 had 5 channels
FEATURE_SPEC_VERSION = 2

# Channels of a history (n, channels, days), oldest day first: counts per UTC day, revenue in currency units.
CHANNELS = ("clicks", "cart_adds", "cart_removes", "units", "revenue", "order_lines")
CLICKS, CART_ADDS, CART_REMOVES, UNITS, REVENUE, ORDER_LINES = range(len(CHANNELS))
FUNNEL = slice(CLICKS, CART_REMOVES + 1)  # clicks, cart adds, cart removes: what leads orders

HISTORY_DAYS = 56  # days of history a forecast reads (TRENDCAST_HISTORY_DAYS defaults to it)
