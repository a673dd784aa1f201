"""Rolling-origin evaluation of forecasters: backtest, reference baselines, scores and the report."""
