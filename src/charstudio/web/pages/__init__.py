"""Studio pages, one module per page (and the login form, files and the job stream)."""

__all__: list[str] = []
