"""Accepting a generated image saves its workflow (the generation itself is in test_service)."""

from __future__ import annotations

import pytest

from charstudio.backends.accepted import accept_generated
from charstudio.errors import NotFound
from charstudio.services import Services


def test_unknown_generation_is_not_found(services: Services) -> None:
    services.init()
    with pytest.raises(NotFound) as caught:
        accept_generated(services.store, services.db, generation_id=12345)
    assert str(caught.value) == "no generated image with id 12345"
    assert not any(services.store.generated_workflows_dir.iterdir())
