"""ProGAN progressive pretraining: the official schedule, growing through stages,
optimiser resets, bit-identical resume, and a ProGAN that RICK then adapts."""
import os

import jax
import numpy as np
import pytest

import fsig_jax
from engine_utils import leaves_with_paths, tiny_images
from fsig_jax.engine import parallel, progressive, run_config
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.progan import ProGANConfig

CFG = ProGANConfig(16, (32, 32, 16), z_dim=32, d_hidden=32)


@pytest.mark.parametrize('kimg,expect', [
    (0, (4, 1.0)), (600, (4, 1.0)), (750, (8, 0.25)), (1200, (8, 1.0)), (2100, (16, 0.5)),
    (4800, (64, 1.0)), (9000, (64, 1.0))])
def test_schedule_is_the_official_lod(kimg, expect):
  res, alpha = progressive.stage(kimg * 1000, 64, 600, 600)
  assert res == expect[0] and alpha == pytest.approx(expect[1])


def config(steps):
  c = run_config.default_config()
  c.hparams.batch_size = 4
  c.progressive = progressive.progressive_config()
  c.progressive.train_kimg = 0.008  # 2 steps of 4 images per stabilise / fade phase
  c.progressive.transition_kimg = 0.008
  c.steps = steps
  c.log_every = 1
  c.checkpoint_every = 3
  c.sample_every = 0
  return c


def run(steps, wd, mesh=None):
  state, model = progressive.pretrain(config(steps), wd, bundle=init_bundle(CFG, jax.random.PRNGKey(0)),
                                      images=tiny_images(8), mesh=mesh)
  return leaves_with_paths(jax.device_get(state)), model


def test_grows_resumes_identically_and_rick_adapts_the_result(tmp_path, caplog):
  caplog.set_level('INFO', logger='fsig_jax')
  # Images seen 0..36 in phases of 8: 4px (steps 0-2; the fade starts at alpha 0),
  # fading to 8 (step 3), 8 (4-6), fading to 16 (7), 16 (8-9).
  full, model = run(10, str(tmp_path / 'full'))
  assert 'step 3: now at 8px (fading in); optimiser state reset' in caplog.text
  assert 'step 7: now at 16px (fading in)' in caplog.text
  assert 'step 8: now at 16px (stable)' in caplog.text
  wd = str(tmp_path / 'wd')
  run(5, wd)
  resumed, _ = run(10, wd)
  for k in full:
    np.testing.assert_array_equal(full[k], resumed[k], err_msg=k)
  loaded = fsig_jax.load_pretrained(str(tmp_path / 'wd' / 'model'))
  assert isinstance(loaded.config, ProGANConfig)
  assert np.isfinite(np.asarray(loaded.generate(loaded.sample_z(jax.random.PRNGKey(0), 4)))).all()
  adapted, state = fsig_jax.adapt(
      loaded, tiny_images(4), method='rick', steps=2, batch_size=2, loss='wgan_gp',
      r1_gamma=0.0, method_kwargs={'rick': dict(warmup_iter=1, fisher_freq=1, num_fisher_img=1,
                                                 chunk=2)})
  assert int(state['method']['rick']['n_estimates']) == 2


@pytest.mark.slow
def test_a_restart_loads_its_compiled_steps_and_a_mesh_matches(tmp_path, caplog, exe_cache):
  """The step goes through parallel.jit_step: one program per resolution (a fade and
  the stable phase after it share one; alpha is an argument), kept in the
  executable cache and loaded by a restart. pretrain always runs on a mesh (the
  configured one by default); a mesh passed in explicitly gives the same run."""
  caplog.set_level('INFO', logger='fsig_jax')
  full, _ = run(10, str(tmp_path / 'full'))
  assert caplog.text.count('progan_step: compiled') == 3, caplog.text
  assert len(os.listdir(exe_cache)) == 3
  wd = str(tmp_path / 'wd')
  run(5, wd)  # another config (steps): its own 4 and 8 px programs
  caplog.clear()
  resumed, _ = run(10, wd)  # the 10-step config again: from step 5, its 8 and 16 px programs
  assert caplog.text.count('progan_step: loaded') == 2, caplog.text
  assert 'progan_step: compiled' not in caplog.text
  for k in full:
    np.testing.assert_array_equal(full[k], resumed[k], err_msg=k)
  on_mesh, _ = run(10, str(tmp_path / 'mesh'), mesh=parallel.make_mesh(jax.devices()[:1]))
  for k in full:
    np.testing.assert_allclose(full[k], on_mesh[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_refuses_a_stylegan2(tmp_path):
  from engine_utils import tiny_bundle  # pylint: disable=g-import-not-at-top
  with pytest.raises(run_config.ConfigError, match='trains a ProGAN'):
    progressive.pretrain(config(1), None, bundle=tiny_bundle(), images=tiny_images(8))


def test_engine_adapts_a_progan_with_wgan_gp():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from engine_utils import tiny_hparams  # pylint: disable=g-import-not-at-top
  from fsig_jax.engine.state import init_state  # pylint: disable=g-import-not-at-top
  from fsig_jax.engine.step import make_train_step  # pylint: disable=g-import-not-at-top
  from fsig_jax.methods import get_method  # pylint: disable=g-import-not-at-top
  hp = tiny_hparams(batch_size=2, loss='wgan_gp', r1_gamma=0.0)
  method = get_method('tgan')
  state = init_state(init_bundle(CFG, jax.random.PRNGKey(0)), hp, method, jax.random.PRNGKey(1))
  step = make_train_step(CFG, hp, method, donate=False)
  for _ in range(2):  # g_reg_every 2: the path-length step would run on step 0
    state, metrics = step(state, jnp.asarray(tiny_images(2)))
    assert float(metrics['d_gp']) > 0 and float(metrics['pl']) == 0  # no styles, no PL
  hp.loss = 'hinge'
  with pytest.raises(ValueError, match="'logistic' or 'wgan_gp'"):
    make_train_step(CFG, hp, method)


@pytest.mark.parametrize('method', ['cdc', 'dcl', 'adam', 'ewc+cdc'])
def test_stylegan2_only_methods_refuse_a_progan_clearly(method):
  """CDC, DCL and AdAM read StyleGAN2 layers and features: on a ProGAN they stop
  before any tracing with one error that names them and the methods that do run."""
  from fsig_jax.engine.run_config import ConfigError  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError) as e:
    fsig_jax.adapt(init_bundle(CFG, jax.random.PRNGKey(0)), tiny_images(4), method=method.split('+'),
                   steps=1, batch_size=2, loss='wgan_gp', r1_gamma=0.0)
  msg = str(e.value)
  assert f'method {method.split("+")[-1]} cannot adapt a progan model' in msg
  assert 'rick' in msg and 'tgan' in msg and 'cdc,' not in msg
