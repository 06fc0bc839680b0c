"""The ``execo-sweep`` command line (also ``python -m execo_engine``): see ``__main__``."""
