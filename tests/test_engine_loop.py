"""The run loop: resume, crash safety, non-finite losses, config checks, adapt()."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import fsig_jax
from conftest import ROOT
from engine_utils import leaves_with_paths, short_run, tiny_bundle, tiny_images
from fsig_jax import methods, run
from fsig_jax.engine import loop, run_config
from fsig_jax.errors import WriteError
from fsig_jax.methods.base import Method
from fsig_jax.utils.images import save_grid


def tiny_config(steps, **kw):
  c = run_config.default_config()
  c.hparams.d_reg_every = 2
  c.hparams.g_reg_every = 2
  return short_run(c, steps, **{'checkpoint_every': 2, **kw})


def final_leaves(config, workdir):
  state, _ = loop.train(config, workdir, bundle=tiny_bundle(), images=tiny_images(8))
  return leaves_with_paths(jax.device_get(state))


def assert_same(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  return final_leaves(tiny_config(5), str(tmp_path_factory.mktemp('full')))


def test_resume_gives_the_same_run(uninterrupted, tmp_path):
  wd = str(tmp_path / 'wd')
  final_leaves(tiny_config(3), wd)  # stops at 3 (checkpoint at 2 and 3)
  resumed = final_leaves(tiny_config(5), wd)  # steps may grow on resume
  assert_same(uninterrupted, resumed)
  assert sorted(os.listdir(os.path.join(wd, 'checkpoints'))) == ['3', '4', '5']
  assert os.path.isdir(os.path.join(wd, 'model'))


def test_resume_with_another_config_is_refused(tmp_path):
  wd = str(tmp_path / 'wd')
  final_leaves(tiny_config(2), wd)
  changed = tiny_config(4)
  changed.hparams.lr = 0.001
  with pytest.raises(run_config.ConfigError, match=r'hparams.lr: 0.002 -> 0.001.*new --workdir'):
    final_leaves(changed, wd)


def test_settings_added_later_at_their_default_do_not_block_resume():
  saved = json.loads(tiny_config(2).to_json_best_effort())
  del saved['hparams']['loss']  # as written by an fsig-jax before hparams.loss existed
  run.check_resumable(json.dumps(saved), tiny_config(4), 'wd', run_config.default_config())
  changed = tiny_config(4)
  changed.hparams.loss = 'wgan_gp'
  with pytest.raises(run_config.ConfigError, match=r"hparams.loss: None -> 'wgan_gp'"):
    run.check_resumable(json.dumps(saved), changed, 'wd', run_config.default_config())


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
  def bomb():
    def g_terms(ctx, mstate):
      return {'bomb': jax.numpy.where(ctx.step >= 3, jax.numpy.nan, 0.0)}
    return Method(name='bomb', g_terms=g_terms)
  monkeypatch.setitem(methods.REGISTRY, 'bomb', bomb)
  c = tiny_config(6)
  c.method.names = 'bomb'
  wd = str(tmp_path / 'wd')
  with pytest.raises(run.NonFiniteLossError, match=r"step 3: loss term\(s\) \['bomb'\]"):
    final_leaves(c, wd)
  assert sorted(os.listdir(os.path.join(wd, 'checkpoints'))) == ['2']


def test_full_disk_mid_checkpoint_keeps_the_last_one_and_resumes_bit_exactly(
    uninterrupted, tmp_path, monkeypatch):
  """ENOSPC inside the save of checkpoint 4 (its arrays written, not committed): one
  WriteError naming the checkpoint folder and the kept step 2; a re-run resumes from
  step 2 and ends bit-identical to a run that never failed."""
  wd = str(tmp_path / 'wd')
  calls = []

  def disk_full_at_4(tmp):
    calls.append(tmp)
    if os.path.basename(os.path.dirname(tmp)).startswith('4.'):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)
  monkeypatch.setattr(run, '_before_commit', disk_full_at_4)
  with pytest.raises(WriteError) as e:
    final_leaves(tiny_config(5), wd)
  msg = str(e.value)
  assert f'cannot write {os.path.join(wd, "checkpoints")}: no space left' in msg, msg
  assert 'checkpoint 4 was not saved; the last complete one (step 2) is kept' in msg, msg
  assert any(c.startswith(os.path.join(wd, 'checkpoints', '4.')) for c in calls), calls
  assert [d for d in os.listdir(os.path.join(wd, 'checkpoints')) if d.isdigit()] == ['2']
  monkeypatch.undo()
  assert_same(uninterrupted, final_leaves(tiny_config(5), wd))
  assert sorted(os.listdir(os.path.join(wd, 'checkpoints'))) == ['2', '4', '5']


def test_adapt_writes_nothing_by_default(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  src = tiny_bundle()
  adapted, state = fsig_jax.adapt(src, tiny_images(8), method='freezed', steps=2, seed=0,
                                  d_reg_every=2, g_reg_every=2)
  assert os.listdir(tmp_path) == []
  assert int(state['step']) == 2
  z = np.zeros((2, 32), np.float32)
  assert not np.allclose(adapted.generate(z), src.generate(z))
  with pytest.raises(TypeError, match="unknown setting 'lrr'"):
    fsig_jax.adapt(src, tiny_images(8), steps=1, lrr=0.1)


KILL_SCRIPT = r'''
import sys
sys.path.insert(0, 'tests')
from engine_utils import tiny_bundle, tiny_images
from test_engine_loop import tiny_config
from fsig_jax.engine import loop
c = tiny_config(int(sys.argv[2]), checkpoint_every=1)
loop.train(c, sys.argv[1], bundle=tiny_bundle(), images=tiny_images(8))
print('DONE')
'''


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume(uninterrupted, tmp_path):
  """Kill -9 the run repeatedly (some kills land mid-checkpoint), then finish it."""
  wd = str(tmp_path / 'wd')
  ckpts = os.path.join(wd, 'checkpoints')
  for delay in (0.0, 0.05, 0.3):
    p = subprocess.Popen([sys.executable, '-c', KILL_SCRIPT, wd, '5'], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while time.time() - t0 < 240:  # wait until it is writing checkpoints, then kill
      done = [d for d in os.listdir(ckpts) if d.isdigit()] if os.path.isdir(ckpts) else []
      if p.poll() is not None or done:
        break
      time.sleep(0.01)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
  r = subprocess.run([sys.executable, '-c', KILL_SCRIPT, wd, '5'], cwd=ROOT, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0 and 'DONE' in r.stdout, r.stderr[-3000:]
  assert_same(uninterrupted, final_leaves(tiny_config(5), wd))  # loads step 5, runs nothing


def test_sample_grid_shows_the_source_row_only_when_adapting(tmp_path):
  """Adapting: source row over adapted row. From scratch (a random: source, i.e.
  pretraining) the random initialisation is not worth a row: G_ema only, 8 a row."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  bundle = tiny_bundle()
  res = bundle.config.resolution
  z = jax.random.normal(jax.random.PRNGKey(0), (16, bundle.config.z_dim))
  source_row = np.asarray(bundle.generate(z))
  both = save_grid(str(tmp_path / 'a.png'), *loop.sample_rows(source_row, bundle, z))
  alone = save_grid(str(tmp_path / 'b.png'), *loop.sample_rows(None, bundle, z))
  (w_both, h_both), (w_alone, h_alone) = Image.open(both).size, Image.open(alone).size
  side = lambda n: n * (res + 2) + 2  # noqa: E731  (make_grid pads 2 px)
  assert (w_both, h_both) == (side(16), side(2))   # 16 columns, 2 rows
  assert (w_alone, h_alone) == (side(8), side(2))  # 8 columns, 2 rows


def test_progress_rate_follows_the_recent_speed():
  """The ETA uses the last `window` lines: after a slowdown (a ProGAN growing, a busier
  machine) the rate is the new one, not the run's average; the first line is compile."""
  p = run.Progress(1000, window=2)
  assert 'first step (includes compilation)' in p.line(1, {}, now=0.0)
  assert '10.00 it/s | ETA 1:38' in p.line(11, {}, now=1.0)
  p.line(21, {}, now=2.0)
  p.line(22, {}, now=3.0)  # now 1 step/s
  line = p.line(23, {'loss': 0.5}, now=4.0)
  assert '1.00 it/s' in line and 'ETA 16:17' in line and 'loss=0.5' in line


def test_a_checkpoint_that_does_not_fit_the_state_is_one_clear_error(tmp_path):
  """A workdir whose checkpoint has another state structure (an older fsig-jax, e.g. a
  RICK run from before the per-leaf Adam counts) or other shapes: one CheckpointError
  naming the step, the folder and the fix, not orbax's tree dump."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fsig_jax.errors import CheckpointError  # pylint: disable=g-import-not-at-top
  from fsig_jax.run import Run  # pylint: disable=g-import-not-at-top
  config = tiny_config(2)
  Run(config, str(tmp_path)).save(1, {'step': jnp.int32(1), 'a': jnp.ones(3)})
  for state, what in (({'step': jnp.int32(0), 'a': jnp.ones(3), 'b': jnp.ones(2)},
                       'tree structures do not match'),
                      ({'step': jnp.int32(0), 'a': jnp.ones(4)}, 'not compatible')):
    with pytest.raises(CheckpointError) as e:
      Run(config, str(tmp_path)).restore(state)
    msg = str(e.value)
    assert what in msg and 'step 1' in msg and 'new --workdir' in msg and '\n' not in msg, msg
