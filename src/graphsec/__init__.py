"""graphsec: a self-hostable Microsoft Graph Security API server."""

from graphsec.app import create_app
from graphsec.config import Settings

__all__ = ["Settings", "create_app"]
