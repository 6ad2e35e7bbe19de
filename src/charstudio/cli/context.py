"""State shared by the commands of one CLI invocation: settings and services, built once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from charstudio.config import Settings, load_settings
from charstudio.services import Services, build_services

__all__ = ["CliState", "services_of"]


@dataclass
class CliState:
    """Built by the root callback; commands reach it through ``ctx.obj``."""

    home: str | None = None
    _services: Services | None = field(default=None, init=False)

    def services(self) -> Services:
        if self._services is None:
            overrides = {"home": Path(self.home)} if self.home else {}
            settings: Settings = load_settings(**overrides)
            self._services = build_services(settings)
        return self._services

    def close(self) -> None:
        """Close what the invocation opened (the database, the ComfyUI pool's connections)."""
        if self._services is not None:
            self._services.close()
            self._services = None


def services_of(ctx: typer.Context) -> Services:
    """The invocation's services (settings loaded on first use)."""
    state = ctx.find_root().obj
    assert isinstance(state, CliState), "the root callback sets ctx.obj"
    return state.services()
