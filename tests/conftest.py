"""Shared test fixtures: the read-only ../shared folder beside the project."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("FSIG_SHARED", ROOT.parent / "shared"))


def shared_path(*parts):
  """Returns a path inside ../shared, or skips the test naming what is missing."""
  p = SHARED.joinpath(*parts)
  if not p.exists():
    pytest.skip(f"needs {p} (the read-only ../shared folder beside the project; set FSIG_SHARED to relocate it)")
  return p
