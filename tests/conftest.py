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


def pytest_configure(config):
  """Share compiled XLA programs across tests and their subprocesses (CPU cache)."""
  cache = os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                                os.path.join(os.environ.get('TMPDIR', '/tmp'), 'fsig_jax_xla_cache'))
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '1')
  os.makedirs(cache, exist_ok=True)
