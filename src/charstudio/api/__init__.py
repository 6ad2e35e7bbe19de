"""The REST API: FastAPI over the services, versioned under ``/api/v1``."""

from charstudio.api.app import create_app

__all__ = ["create_app"]
