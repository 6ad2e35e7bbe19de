"""The REST API: FastAPI routes over the services, versioned under ``/api/v1``."""

from charstudio.api.app import include_api

__all__ = ["include_api"]
