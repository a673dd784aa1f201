"""trendcast: real-time demand forecasting worker (Faust agents, per-SKU windows, forecasts, alerts)."""

__version__ = "0.1.0"
