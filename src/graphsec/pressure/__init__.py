"""Graph under pressure: throttling with Graph's documented limits, chaos (random failures and
latency) and providers that fail (206 Partial Content with ``Warning``).

- ``config.py``: the ``--config`` TOML file and ``--throttle``, checked whole before anything
  starts (docs/configuration.md documents every key).
- ``throttle.py``: which limits a request counts against, and the decision (GCRA buckets,
  retry discipline, a concurrency cap) over state kept where every worker and instance sees it
  (``storage/throttle/``).
- ``chaos.py``: seeded random failures and latency.
- ``providers.py``: provider health, per tenant, and the ``Warning`` header.

Pure: no I/O of its own (the throttle state is handed in), no HTTP.
"""
