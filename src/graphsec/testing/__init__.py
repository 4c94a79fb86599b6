"""graphsec in a test suite: a real server per test session, a clean slate per test.

The pytest plugin (:mod:`graphsec.testing.plugin`) is registered through the ``pytest11``
entry point, so installing graphsec is enough; :class:`GraphsecServer` is the server it starts,
usable without pytest too.
"""

from graphsec.testing.server import AdminError, GraphsecServer, ServerOptions

__all__ = ["AdminError", "GraphsecServer", "ServerOptions"]
