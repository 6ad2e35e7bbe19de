"""The character library: database, asset store, characters and their consistency profile."""

from charstudio.library.characters import Library
from charstudio.library.database import Database, head_revision, open_database
from charstudio.library.profile import (
    METHOD_DEFAULTS,
    CharacterConsistencyProfile,
    GenerationParams,
    Method,
    Overrides,
)
from charstudio.library.qc_policy import QCPolicy
from charstudio.library.store import AssetStore
from charstudio.library.stored_paths import from_stored, to_stored
from charstudio.library.types import (
    CharacterDetail,
    CharacterSummary,
    ImageLimits,
    ImportResult,
    ProgressCallback,
    RemoveResult,
)

__all__ = [
    "METHOD_DEFAULTS",
    "AssetStore",
    "CharacterConsistencyProfile",
    "CharacterDetail",
    "CharacterSummary",
    "Database",
    "GenerationParams",
    "ImageLimits",
    "ImportResult",
    "Library",
    "Method",
    "Overrides",
    "ProgressCallback",
    "QCPolicy",
    "RemoveResult",
    "from_stored",
    "head_revision",
    "open_database",
    "to_stored",
]
