"""The resume promise, tested where it is hardest: SIGKILL while a checkpoint is being
written, during a periodic evaluation, and during a comparison-table run; each resumed
run ends bit-identical to one that was never killed.

The kills land inside the work through test-only hooks (`run.pause_for_tests`):
FSIG_TEST_CHECKPOINT_DELAY / FSIG_TEST_EVAL_DELAY = 'SECONDS:MARKER' make the process
write a line to MARKER once it is inside a checkpoint write (arrays written, not
committed) or an evaluation (computed, not recorded), then sleep; the test kills it
there. All slow tier: each starts Python processes and compiles tiny models."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, shared_path
from engine_utils import tiny_bundle, tiny_images
from test_engine_loop import KILL_SCRIPT, assert_same, final_leaves, tiny_config
from test_eval import BATCH, _fsig_table, write_pngs
from fsig_jax.engine import loop

pytestmark = pytest.mark.slow
# The scripts log progress ('resuming from checkpoint at step N', 'eval at step N') to stdout.
LOGGED = ("import logging, sys\n"
          "logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stdout)\n")


def start(script, *args, env=None):
  return subprocess.Popen([sys.executable, '-c', LOGGED + script, *map(str, args)], cwd=ROOT,
                          env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def kill_when(p, marker, predicate, timeout=240):
  """SIGKILLs `p` as soon as a line of `marker` satisfies `predicate`; returns that line."""
  t0 = time.time()
  while time.time() - t0 < timeout:
    lines = open(marker).read().splitlines() if os.path.exists(marker) else []
    hit = next((l for l in lines if predicate(l)), None)
    if hit is not None:
      p.send_signal(signal.SIGKILL)
      p.wait()
      assert p.returncode == -signal.SIGKILL, 'the run ended before the kill'
      return hit
    if p.poll() is not None:
      pytest.fail(f'the run ended before reaching the kill point:\n{p.stdout.read()[-3000:]}')
    time.sleep(0.01)
  p.kill()
  pytest.fail('the run never reached the kill point')


def finish(script, *args):
  r = subprocess.run([sys.executable, '-c', LOGGED + script, *map(str, args)], cwd=ROOT,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
  assert r.returncode == 0 and 'DONE' in r.stdout, r.stdout[-3000:]
  return r.stdout


def test_sigkill_inside_a_checkpoint_write_then_resume(tmp_path):
  """Killed while checkpoint 3 is half written (arrays on disk, not committed): the
  resumed run restores checkpoint 2, ignores the half-written one, and ends bit for bit
  where an uninterrupted run ends."""
  wd, marker = tmp_path / 'wd', tmp_path / 'marker'
  p = start(KILL_SCRIPT, wd, 5, env={'FSIG_TEST_CHECKPOINT_DELAY': f'0.2:{marker}'})
  ckpts = os.path.join(wd, 'checkpoints')
  # Checkpoints 1 and 2 pause 0.2 s each and complete; inside checkpoint 3 the run is
  # killed (the test polls every 10 ms; the pause holds the write open 0.2 s).
  kill_when(p, marker, lambda l: os.path.basename(os.path.dirname(l)).startswith('3.')
            or os.path.basename(l).startswith('3.'))
  names = os.listdir(ckpts)
  assert sorted(n for n in names if n.isdigit()) == ['1', '2'], names
  assert any(n.startswith('3.') and 'tmp' in n for n in names), names  # the half-written one
  out = finish(KILL_SCRIPT, wd, 5)
  assert 'resuming from checkpoint at step 2' in out, out[-3000:]
  assert_same(final_leaves(tiny_config(5), str(tmp_path / 'full')),
              final_leaves(tiny_config(5), str(wd)))  # the latter loads step 5, runs nothing


EVAL_SCRIPT = r'''
import sys
sys.path.insert(0, 'tests')
from engine_utils import tiny_bundle
from test_kill_resume import eval_config
from fsig_jax.engine import loop
loop.train(eval_config(sys.argv[2]), sys.argv[1], bundle=tiny_bundle())
print('DONE')
'''


def eval_config(shots):
  """4 steps on a folder of 8 images, KID-VGG every 2 steps (as test_eval's workdir)."""
  c = tiny_config(4, eval_every=2)
  c.data.source = str(shots)
  c.eval.num_samples = 16
  c.eval.metrics = 'kid_vgg'
  c.eval.batch_size = BATCH
  return c


def eval_lines(wd):
  with open(os.path.join(wd, 'eval', 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f if l.strip()]


def test_sigkill_during_periodic_evaluation_then_resume(tmp_path):
  """Killed inside the step-2 evaluation (computed, not yet recorded): the resumed run
  restores checkpoint 2, makes the evaluation the kill interrupted, and its metrics and
  final parameters equal an uninterrupted run's."""
  shots = write_pngs(tmp_path / 'shots', tiny_images(8))
  wd, marker = tmp_path / 'wd', tmp_path / 'marker'
  p = start(EVAL_SCRIPT, wd, shots, env={'FSIG_TEST_EVAL_DELAY': f'60:{marker}'})
  assert kill_when(p, marker, lambda l: l == 'step 2') == 'step 2'
  assert not os.path.exists(os.path.join(wd, 'eval', 'metrics.jsonl'))
  out = finish(EVAL_SCRIPT, wd, shots)
  assert 'resuming from checkpoint at step 2' in out and 'eval at step 2' in out, out[-3000:]
  full = tmp_path / 'full'
  loop.train(eval_config(shots), str(full), bundle=tiny_bundle())
  resumed = eval_lines(wd)
  assert [r['step'] for r in resumed] == [2, 4]
  uninterrupted = eval_lines(full)
  diff = {k for a, b in zip(resumed, uninterrupted) for k in a.keys() | b.keys()
          if a.get(k) != b.get(k) and k != 'seconds'}  # all but the timing, bit for bit
  assert not diff, [(k, [r.get(k) for r in resumed], [r.get(k) for r in uninterrupted])
                    for k in diff]
  assert_same(final_leaves(eval_config(shots), str(full)),
              final_leaves(eval_config(shots), str(wd)))  # both load step 4, run nothing


TABLE_SCRIPT = r'''
import sys
sys.path.insert(0, 'tests')
from test_kill_resume import table_run
table_run(sys.argv[1])
print('DONE')
'''


def table_run(out):
  """benchmarks/fsig_table.py's run_table in a tiny setting: tgan on babies, seed 0."""
  return _fsig_table().run_table(tiny_bundle(), methods=['tgan'], targets=['babies'],
                                 seeds=[0], steps=2, num_samples=16, out=str(out),
                                 grid_cols=4, eval_batch_size=BATCH,
                                 hparams={'d_reg_every': 2, 'g_reg_every': 2})


def test_sigkill_during_a_comparison_table_then_resume(tmp_path):
  """Killed in the middle of the first adaptation (its first checkpoint written, the
  source's cell done): the rerun reads the finished cell back, resumes the run from its
  checkpoint, and writes the same table, results and grid as a table that was never
  killed; the run's workdir is gone once its cell is written."""
  shared_path('data', 'ten_shot', 'babies')
  out = tmp_path / 'table'
  ckpt = out / 'runs' / 'babies.tgan.seed0' / 'checkpoints' / '1'
  p = start(TABLE_SCRIPT, out)
  t0 = time.time()
  while not ckpt.exists():
    assert p.poll() is None, p.stdout.read()[-3000:]
    assert time.time() - t0 < 300, 'the run never checkpointed'
    time.sleep(0.01)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert p.returncode == -signal.SIGKILL and not (out / 'table.md').exists()
  assert (out / 'cells' / 'babies.source.seedNone.json').exists()
  log = finish(TABLE_SCRIPT, out)
  assert 'babies source: done earlier' in log and 'babies tgan seed 0: train' in log, log
  assert 'resuming from checkpoint at step 1' in log, log
  assert os.listdir(out / 'runs') == []
  full = tmp_path / 'full'
  table_run(full)
  assert (out / 'table.md').read_text() == (full / 'table.md').read_text()
  runs = lambda d: [{k: v for k, v in r.items() if 'seconds' not in k and k != 'steps_per_second'}
                    for r in json.loads((d / 'results.json').read_text())['runs']]  # noqa: E731
  assert runs(out) == runs(full)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  np.testing.assert_array_equal(np.asarray(Image.open(out / 'grid.png')),
                                np.asarray(Image.open(full / 'grid.png')))
