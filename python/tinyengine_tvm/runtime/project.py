"""A compiled project on disk (what ``tvmc compile`` wrote)."""
from __future__ import annotations

import json
import os

from ..errors import TinyEngineError


def read_metadata(project_dir: str) -> dict:
    """The project's metadata.json, or a clear error when the directory is not a project."""
    path = os.path.join(project_dir, "metadata.json")
    if not os.path.isfile(path):
        raise TinyEngineError(f"{project_dir}: not a compiled tinyengine project (no metadata.json)")
    with open(path) as f:
        return json.load(f)
