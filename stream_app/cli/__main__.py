"""``python -m stream_app.cli``: the ``trendcast`` command."""

from stream_app.cli.main import main

main()
