"""Find the app a command names: `module:attribute`, or a bare `module` holding one Conveyor.

The current directory is put on `sys.path` first, as `python -m` would, so `conveyor worker
myapp:app` works from the project's root without installing it.
"""

from __future__ import annotations

import importlib
import os
import sys

from conveyor.app import Conveyor
from conveyor.errors import ConfigurationError


def load_app(reference: str) -> Conveyor:
    """Import `module:attr` (or `module`) and return the Conveyor app it names."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] and exc.name != module_name:
            raise  # the app's own imports failed: show the real error
        raise ConfigurationError(
            f"cannot import {module_name!r} (looked in {os.getcwd()} and on PYTHONPATH)"
        ) from None
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, Conveyor):
            raise ConfigurationError(
                f"{reference!r} is not a Conveyor app ({type(found).__name__})"
            )
        return found
    apps = [value for value in vars(module).values() if isinstance(value, Conveyor)]
    if len(apps) != 1:
        raise ConfigurationError(
            f"module {module_name!r} holds {len(apps)} Conveyor apps: name one as"
            f" {module_name}:attribute"
        )
    return apps[0]
