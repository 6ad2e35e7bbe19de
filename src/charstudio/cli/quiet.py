"""Keep third-party chatter out of charstudio's output.

In-process generation and training load diffusers and transformers, which print their own
lines around charstudio's: transformers' notes about torchvision, diffusers' "modules ... that
should be kept in float32" warnings, and tqdm bars such as "Loading pipeline components...".
None of them asks the user to do anything. :func:`quiet_third_party` turns them off through the
libraries' own switches (environment variables read when they are imported), once, at the
start of the ``charstudio`` process, before anything imports them. A variable the user has
set is kept, and in debug mode (``Settings.debug``) nothing is silenced.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import MutableMapping

__all__ = ["QUIET_ENVIRONMENT", "quiet_third_party"]

QUIET_ENVIRONMENT = {
    "TRANSFORMERS_VERBOSITY": "error",  # transformers' logger: warnings and info off
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DIFFUSERS_VERBOSITY": "error",  # diffusers' logger ("should be kept in float32", ...)
    "DIFFUSERS_NO_ADVISORY_WARNINGS": "1",
    "TQDM_DISABLE": "1",  # tqdm bars (diffusers' and transformers' loading and sampling bars)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
_NOISY_MODULES = r"(transformers|diffusers|torchvision|peft|accelerate)(\.|$)"


def quiet_third_party(
    environ: MutableMapping[str, str] | None = None, *, debug: bool = False
) -> bool:
    """Silence the libraries' own logging, warnings and progress bars; see the module
    docstring. Returns ``False`` (and changes nothing) with ``debug``."""
    env = os.environ if environ is None else environ
    if debug:
        return False
    for name, value in QUIET_ENVIRONMENT.items():
        env.setdefault(name, value)
    warnings.filterwarnings("ignore", module=_NOISY_MODULES)
    return True
