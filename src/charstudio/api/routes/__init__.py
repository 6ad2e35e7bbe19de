"""The API's routers, one module per resource."""

__all__ = ["characters", "datasets", "faces", "generation", "jobs", "lab", "references", "training"]
