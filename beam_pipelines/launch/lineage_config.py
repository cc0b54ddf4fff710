"""Whether a run sends OpenLineage events: decided without importing the client.

The OpenLineage client takes about 0.3 s to import; a run that sends no lineage
(no ``--lineage``, no ``OPENLINEAGE_*`` variables, no ``openlineage.yml``) does
not import it at all.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONFIG_FILE", "lineage_configured", "lineage_wanted"]

# The client's own configuration file, in the working directory or ~/.openlineage.
CONFIG_FILE = "openlineage.yml"


def lineage_wanted(target: str | None) -> bool:
    """Whether ``--lineage`` (``target``) or the client's own configuration asks for events.

    >>> lineage_wanted("console")
    True
    """
    if target:
        return True
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    return lineage_configured()


def lineage_configured() -> bool:
    """Whether the OpenLineage client finds a configuration of its own here."""
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return True
    if any(name.startswith("OPENLINEAGE__TRANSPORT") for name in os.environ):
        return True
    home = Path(os.environ.get("HOME", "~")).expanduser() / ".openlineage" / CONFIG_FILE
    return _readable_file(Path(CONFIG_FILE)) or _readable_file(home)


def _readable_file(path: Path) -> bool:
    """Whether ``path`` is a file this process may read (a home it cannot enter: no)."""
    try:
        return path.is_file() and os.access(path, os.R_OK)
    except OSError:  # e.g. PermissionError on a directory of another user
        return False
