"""Where the project's data directories (schemas/, policies/) are found.

In a checkout (editable install) they are the top-level folders; in a wheel they are bundled
under ``puente/_data``. Settings may point elsewhere.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path | None:
    """The checkout's root (the folder with pyproject.toml), or None for an installed wheel."""
    candidate = _PACKAGE_DIR.parent.parent
    return candidate if (candidate / "pyproject.toml").is_file() else None


def data_dir(name: str) -> Path:
    """The default location of a top-level data folder such as ``schemas`` or ``policies``."""
    root = project_root()
    if root is not None and (root / name).is_dir():
        return root / name
    return _PACKAGE_DIR / "_data" / name
