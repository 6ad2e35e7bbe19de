"""charstudio: consistent characters across generated images."""

__version__ = "0.1.0"
__all__ = ["__version__"]
