"""What operators watch: readiness, Prometheus metrics and the access log (docs/operations.md).

``metrics.py`` (prometheus-client, multiprocess across workers: ``multiprocess.py``),
``access_log.py`` (one line per request, JSON or text), ``observer.py`` (what ``GraphApp`` calls
once per request). The HTTP side, ``/readyz`` and ``/metrics``, is ``graphsec.api.probes``.
Nothing is imported here: ``multiprocess.py`` must be importable before prometheus-client is.
"""
