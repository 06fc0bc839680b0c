"""Where a sweep's shared state lives: the :class:`~execo_engine.store.contract.Store`
protocol, its implementations, and the one location resolver
(:func:`execo_engine.store.locations.open_store`)."""
