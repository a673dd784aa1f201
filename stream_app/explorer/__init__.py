"""The forecast explorer: a small web page over the forecasts, stage-alerts and catalog topics.

``view`` folds records into per-SKU history and ``page``/``charts`` render it
(both pure); ``server`` follows the topics and serves the page (the edge).
"""
