"""Start-up: the launchers freeze their imports out of the garbage collector's way,
and benchmarks/start_time.py reads a run's phases from its log (no timing is
asserted: benchmarks measure, tests check what they read)."""
import functools
import gc
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from fsig_jax.utils import gc_tuning


@functools.lru_cache(maxsize=None)
def _bench():
  spec = importlib.util.spec_from_file_location(
      'start_time', os.path.join(ROOT, 'benchmarks', 'start_time.py'))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_freeze_keeps_what_is_alive_out_of_collections():
  before = gc.get_threshold()
  try:
    gc_tuning.freeze_imports()
    assert gc.get_freeze_count() > 1000  # the imported modules' objects
    assert gc.get_threshold()[0] >= gc_tuning.YOUNG_THRESHOLD
    import weakref  # pylint: disable=g-import-not-at-top

    class Node:
      pass
    n = Node()
    n.self = n
    ref = weakref.ref(n)
    del n
    gc.collect()
    assert ref() is None  # cycles made after the freeze are still collected
  finally:
    gc.unfreeze()
    gc.set_threshold(*before)


def test_phases_are_read_from_the_log():
  log = '\n'.join([
      'I1130 10:00:02.500000 1 run.py:423] starting at step 0; the first step compiles',
      'W1130 10:00:06.000000 1 dispatch.py:204] Finished tracing train_step for jit in 3.4 sec',
      'W1130 10:00:07.000000 1 dispatch.py:204] Finished jaxpr to MLIR module conversion '
      'jit(train_step) in 1.0 sec',
      "W1130 10:00:14.000000 1 compiler.py:125] Persistent compilation cache hit for "
      "'jit_train_step' with key 'k'",
      'W1130 10:00:14.100000 1 dispatch.py:204] Finished XLA compilation of jit(train_step) in 7 sec',
      'I1130 10:00:15.200000 1 run.py:436] step 1/1 | first step (includes compilation)',
      'I1130 10:00:16.000000 1 run.py:436] step 1/1 | again: only the first line counts'])
  import datetime  # pylint: disable=g-import-not-at-top
  t0 = datetime.datetime(2026, 11, 30, 10, 0, 0, tzinfo=datetime.timezone.utc).timestamp()
  row = _bench().phases(log, t0, 2026)
  assert row == {'ready': 2.5, 'traced': 6.0, 'lowered': 7.0, 'compiled': 14.1,
                 'stepped': 15.2, 'cache': 'xla'}
  with pytest.raises(SystemExit, match='traced'):
    _bench().phases(log.replace('Finished tracing', 'Done'), t0, 2026)
  # From fsig-jax's executable cache: no tracing or lowering.
  hit = '\n'.join([
      'I1130 10:00:02.500000 1 run.py:423] starting at step 0; the first step compiles',
      'I1130 10:00:05.000000 1 executable_cache.py:218] train_step: loaded the compiled '
      'program from /c/executables/train_step-k.jaxexe in 2.5 s (no tracing)',
      'I1130 10:00:06.000000 1 run.py:436] step 1/1 | first step (includes compilation)'])
  assert _bench().phases(hit, t0, 2026) == {'ready': 2.5, 'traced': None, 'lowered': None,
                                            'compiled': 5.0, 'stepped': 6.0,
                                            'cache': 'executable'}
  with pytest.raises(SystemExit, match='compiled'):
    _bench().phases(hit.replace('loaded the compiled', 'loaded a'), t0, 2026)
  # A student trainer's step: jitted as step_fn, cached as gpd_step (--step).
  student = 'step_fn:gpd_step'
  assert _bench().phases(log.replace('train_step', 'step_fn'), t0, 2026, student) == row
  assert _bench().phases(hit.replace('train_step', 'gpd_step'), t0, 2026, student) == {
      'ready': 2.5, 'traced': None, 'lowered': None, 'compiled': 5.0, 'stepped': 6.0,
      'cache': 'executable'}
  with pytest.raises(SystemExit, match='traced'):  # the adaptation step's names: not found
    _bench().phases(log.replace('train_step', 'step_fn'), t0, 2026)


@pytest.mark.slow
def test_a_warm_run_takes_its_step_from_the_cache(tmp_path):
  out = tmp_path / 'rows.json'
  r = subprocess.run([sys.executable, 'benchmarks/start_time.py', '--warm=1', f'--out={out}'],
                     cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  cold, warm = json.loads(out.read_text())['rows']
  assert (cold['run'], cold['cache'], warm['run'], warm['cache']) == (
      'cold', 'none', 'warm', 'executable')
  assert 0 < cold['ready'] < cold['traced'] < cold['lowered'] < cold['compiled'] < cold['stepped']
  assert warm['traced'] is None and 0 < warm['ready'] < warm['compiled'] < warm['stepped']
