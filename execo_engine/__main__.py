"""``python -m execo_engine``: the ``execo-sweep`` command line."""

from execo_engine.cli.__main__ import main

main()
