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
  # Test programs are tiny: XLA's expensive optimisation passes cost far more
  # compile time than they save run time (about 40% less compile time per step
  # program). Inherited by the CLI subprocesses the tests start.
  os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
  # XLA's native convolutions compile faster than the CPU forms ('hybrid', the
  # CPU default, and 'im2col'; fsig_jax/nn/conv.py); both are checked against
  # native per layer with gradients (test_nn_layers) and over whole train steps
  # (test_engine_step.test_eight_devices_match_one_device).
  os.environ.setdefault('FSIG_CONV_IMPL', 'native')
  # XLA:CPU's default YNNPACK fusions: the product turns them off (runs faster,
  # loads cached programs faster; fsig_jax/utils/xla_cpu.py), but with them off
  # these tests' programs compile more slowly (test_method_rick, test_kdit and
  # test_gpd: 409 s off, against 349 s and 385 s on, run before and after).
  # test_xla_cpu checks the product's setting in its own processes; the whole
  # default suite passed both ways on 2026-12-01.
  os.environ.setdefault('FSIG_XLA_CPU_DEFAULTS', '0')
  os.makedirs(cache, exist_ok=True)


@pytest.fixture(autouse=True)
def _xla_optimization(request):
  """Tests marked xla_optimized are run-time heavy (e.g. LPIPS over many pairs):
  they compile with XLA's full optimisation, which the rest of the run skips."""
  if request.node.get_closest_marker('xla_optimized') is None:
    yield
    return
  import jax  # pylint: disable=g-import-not-at-top
  before = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', False)
  try:
    yield
  finally:
    jax.config.update('jax_disable_most_optimizations', before)


@pytest.fixture
def exe_cache(tmp_path, monkeypatch):
  """An empty executable cache (fsig_jax/utils/executable_cache.py) in tmp_path, with
  XLA's persistent cache off so that every compile is XLA's own (a program from
  XLA's cache is not kept, by design). Yields the entries' folder."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax._src import compilation_cache  # pylint: disable=g-import-not-at-top
  from fsig_jax.utils import executable_cache  # pylint: disable=g-import-not-at-top
  folder = str(tmp_path / 'executables')
  monkeypatch.setattr(executable_cache, 'folder', lambda: folder)
  before = jax.config.jax_enable_compilation_cache
  jax.config.update('jax_enable_compilation_cache', False)
  compilation_cache.reset_cache()  # jax decides once whether its cache is used
  yield folder
  jax.config.update('jax_enable_compilation_cache', before)
  compilation_cache.reset_cache()


def one_line_error(r, *words):
  """A command-line tool refused bad input as it should: exit code 2 and one
  `fsig-jax: error:` line holding every one of `words`, no traceback."""
  assert r.returncode == 2, r.stdout + r.stderr
  assert 'Traceback' not in r.stderr
  lines = [l for l in r.stderr.splitlines() if l.startswith('fsig-jax: error:')]
  assert len(lines) == 1, r.stderr
  for w in words:
    assert w in lines[0], (w, lines[0])


def pytest_collection_finish(session):
  """Every test module is imported: freeze them out of the garbage collector's way
  (fsig_jax.utils.gc_tuning; tracing in tests pays the same full collections).
  FSIG_TEST_NOFREEZE=1 leaves the collector as it is, to measure the difference."""
  del session
  if os.environ.get('FSIG_TEST_NOFREEZE'):
    return
  from fsig_jax.utils.gc_tuning import freeze_imports  # pylint: disable=g-import-not-at-top
  freeze_imports()
