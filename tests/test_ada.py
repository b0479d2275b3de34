"""ADA as CDC ran it (fsig_jax/data/ada.py): the augmentation against the torch code
CDC imports, its sampling, the adaptive p by hand, and the p in the train state."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from engine_utils import TINY, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax import run
from fsig_jax.data import ada
from fsig_jax.engine import run_config
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.errors import ConfigError
from fsig_jax.methods import get_method

sys.path.insert(0, str(ROOT))
from configs import common, offline, paper_ffhq256  # noqa: E402  pylint: disable=g-import-not-at-top

GOLDEN = os.path.join(os.path.dirname(__file__), 'goldens', 'ada_augment_cdc.npz')


@pytest.fixture(scope='module')
def golden():
  with np.load(GOLDEN) as f:
    return {k: f[k] for k in f.files}


def nhwc(a):
  return jnp.asarray(a.transpose(0, 2, 3, 1))


@pytest.mark.parametrize('name', ['identity', 'mixed', 'half'])
def test_apply_matches_cdc_non_leaking(golden, name):
  """apply(x, G, C) == CDC non_leaking.py augment(x, p, (G, C)) (tests/goldens/
  make_ada_golden.py): the padding, the wavelet resampling, the grid, the colour."""
  x = nhwc(golden['x'])
  g, c = jnp.asarray(golden[f'{name}_G']), jnp.asarray(golden[f'{name}_C'])
  h, w = x.shape[1:3]
  np.testing.assert_array_equal(ada.padding(jnp.linalg.inv(g), h, w), golden[f'{name}_pads'])
  out = np.asarray(ada.apply(x, g, c)).transpose(0, 3, 1, 2)
  np.testing.assert_allclose(out, golden[f'{name}_out'], atol=5e-5)
  if name == 'mixed':
    affine = np.asarray(ada.apply_affine(x, g)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(affine, golden['mixed_affine'], atol=5e-5)


def test_p0_draws_identities_and_identity_colour_is_exact(golden):
  """At p = 0 the matrices are identities exactly, so augment() is apply(x, I, I),
  whatever the key: CDC's resampling alone (which is not x: see the module doc)."""
  x = nhwc(golden['x'])
  b, h, w, _ = x.shape
  g, c = ada.sample_matrices(jax.random.PRNGKey(5), 0.0, b, h, w)
  np.testing.assert_array_equal(g, np.broadcast_to(np.eye(3), (b, 3, 3)))
  np.testing.assert_array_equal(c, np.broadcast_to(np.eye(4), (b, 4, 4)))
  np.testing.assert_array_equal(ada.apply_color(x, c), x)
  a = ada.augment(x, jax.random.PRNGKey(1), 0.0)
  np.testing.assert_allclose(np.asarray(a).transpose(0, 3, 1, 2), golden['identity_out'],
                             atol=5e-5)
  # Close to x for the smooth part, far for the noise: the resampling blurs.
  assert 0 < float(jnp.mean(jnp.abs(a - x))) < 0.2


def test_jit_with_traced_p_and_gradient_through_the_augmentation():
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 24, 32, 3), minval=-1, maxval=1)
  key = jax.random.PRNGKey(3)
  f = jax.jit(lambda x, p: ada.augment(x, key, p))
  y = f(x, jnp.float32(0.7))
  assert y.shape == x.shape and bool(jnp.all(jnp.isfinite(y)))
  grad = jax.jit(jax.grad(lambda x, p: jnp.sum(ada.augment(x, key, p) ** 2)))(x, 0.7)
  assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).sum()) > 0


def test_sampled_transforms_follow_the_official_distributions():
  """det(G's 2x2) = +-s^2: the sign is the x-flip (each sample flips with prob p / 2,
  as `random_mat_apply` of a {0, 1} category), s the isotropic scale lognormal(0,
  0.2 ln 2). A batch from sample_matrices fits torch's reflect padding (the batch's
  largest: a batch of 512 would almost never fit, so the retry is checked on 4)."""
  n, h, w = 512, 32, 32
  for p in (1.0, 0.5):
    g = ada.sample_affine(jax.random.PRNGKey(int(p * 10)), p, n, h, w)
    det = np.linalg.det(np.asarray(g)[:, :2, :2])
    flipped = float(np.mean(det < 0))
    assert abs(flipped - p / 2) < 0.07, (p, flipped)
    c = np.asarray(ada.sample_color(jax.random.PRNGKey(2), p, n))
    assert np.all(c[:, 3, :3] == 0)  # (saturation_mat scales c[3, 3]; apply_color ignores it)
    assert abs(float(np.mean(c[:, 0, 3] != 0)) - p) < 0.07  # only brightness sets the offset
  scale = np.log(np.abs(det)) / 2  # p = 0.5: a mixture of 0 and the lognormal
  assert abs(np.std(scale[np.abs(scale) > 1e-6]) / (0.2 * np.log(2)) - 1) < 0.15
  for seed in range(3):
    g, _ = ada.sample_matrices(jax.random.PRNGKey(seed), 1.0, 4, h, w)
    assert bool(ada.fits(ada.padding(jnp.linalg.inv(g), h, w), h, w))
    assert not np.allclose(g, np.eye(3))


def test_adaptive_p_by_hand():
  """CDC train.py:239-258: signs and counts accumulate until more than 255
  predictions; then p += sign(r_t - target) * target / length * n, clipped to [0, 1]."""
  target, length = 0.6, 500 * 1000
  step = target / length * 256
  s = ada.ada_init(0.0)
  up, down = jnp.ones((4, 1)), -jnp.ones((4, 1))
  update = jax.jit(lambda s, logits: ada.ada_update(s, jnp.sum(jnp.sign(logits)),
                                                   logits.shape[0], target, length))
  for i in range(63):  # 252 predictions: nothing yet
    s = update(s, up)
    assert float(s['p']) == 0 and float(s['n']) == 4 * (i + 1)
  s = update(s, up)  # 256 > 255: r_t = 1 > 0.6, p rises by 0.6 / 500k * 256
  assert float(s['r_t']) == 1 and float(s['n']) == 0 and float(s['signs']) == 0
  np.testing.assert_allclose(float(s['p']), step, rtol=1e-6)
  for _ in range(64):
    s = update(s, down)
  assert float(s['r_t']) == -1 and abs(float(s['p'])) < 1e-9  # back down, clipped at 0
  for _ in range(64):
    s = update(s, down)
  assert float(s['p']) == 0
  # r_t exactly at the target moves p down (`r_t_stat > ada_target`, strict).
  s = ada.ada_init(0.0)
  s = {**s, 'p': jnp.float32(0.5), 'signs': jnp.float32(0.6 * 256 - 4), 'n': jnp.float32(252)}
  s = update(s, up)
  np.testing.assert_allclose(float(s['p']), 0.5 - step, rtol=1e-6)
  # A patch D as CDC's: every patch's sign counts, the count is the batch.
  s = ada.ada_update({**ada.ada_init(0.0), 'signs': jnp.float32(252 * 16), 'n': jnp.float32(252)},
                     64.0, 4, 0.6, 1000)
  assert float(s['r_t']) == 16 and float(s['p']) == pytest.approx(0.6 / 1000 * 256)
  # Clipped at 1.
  s = ada.ada_update({**ada.ada_init(0.0), 'p': jnp.float32(0.99), 'signs': jnp.float32(252),
                      'n': jnp.float32(252)}, 4.0, 4, 0.6, 1000)
  assert float(s['p']) == 1.0


def test_tgan_ada_trains_logs_p_and_checkpoints_it(tmp_path):
  """The tgan_ada row on the tiny model: p in the state, updated in the jitted step
  from D's real logits (an accumulator started near 256 so it fires at step 1),
  used at the next step, logged, and restored from a checkpoint."""
  c = common.base('tgan_ada')
  assert c.method.names == 'tgan' and c.hparams.augment == 'ada' and c.hparams.augment_p == 0
  hp = tiny_hparams(augment='ada', augment_p=0.0, ada_length=1000)
  method = get_method(run_config.method_names(c))
  state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(0))
  state['ada'] = {**state['ada'], 'signs': jnp.float32(252), 'n': jnp.float32(252)}
  step = make_train_step(TINY, hp, method, donate=False)
  images = jnp.asarray(tiny_images(hp.batch_size))
  metrics = []
  for _ in range(2):
    state, m = step(state, images)
    metrics.append({k: float(v) for k, v in m.items()})
  assert metrics[0]['ada_r_t'] > 0.6  # (252 + 4 signs) / 256
  np.testing.assert_allclose(metrics[0]['ada_p'], 0.6 / 1000 * 256, rtol=1e-6)
  assert metrics[1]['ada_p'] == metrics[0]['ada_p'] and float(state['ada']['n']) == 4
  assert all(np.isfinite(v) for m in metrics for v in m.values())

  config = run_config.default_config()
  config.steps = 2
  config.hparams = hp
  saver = run.Run(config, str(tmp_path), defaults=run_config.default_config())
  saver.save(2, state)
  fresh = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(0))
  restored = run.Run(config, str(tmp_path), defaults=run_config.default_config()).restore(fresh)
  for k in ('p', 'signs', 'n', 'r_t'):
    assert float(restored['ada'][k]) == float(state['ada'][k]), k
  assert float(restored['ada']['p']) > 0


def test_ada_needs_its_state_and_images_above_the_filter():
  hp = tiny_hparams(augment='ada', augment_p=0.0)
  method = get_method('tgan')
  state = init_state(tiny_bundle(), tiny_hparams(), method, jax.random.PRNGKey(0))
  step = make_train_step(TINY, hp, method, donate=False)
  with pytest.raises(ConfigError, match="augment='ada' needs the ADA state"):
    step(state, jnp.asarray(tiny_images(hp.batch_size)))
  with pytest.raises(ConfigError, match='larger than 6 px'):
    ada.apply(jnp.zeros((1, 6, 6, 3)), jnp.eye(3)[None], jnp.eye(4)[None])


def test_configs_tgan_rows_and_cdc_run_sh():
  with pytest.raises(ConfigError, match="'tgan_aug' is gone.*'tgan_diffaug'.*'tgan_ada'"):
    offline.get_config('tgan_aug,babies')
  d = offline.get_config('tgan_diffaug,babies')
  assert d.method.names == 'tgan' and d.hparams.augment == 'color,translation,cutout'
  a = offline.get_config('tgan_ada,babies')
  assert a.hparams.augment == 'ada' and a.hparams.augment_p == 0.0
  assert (a.hparams.ada_target, a.hparams.ada_length) == (0.6, 500000)
  # CDC run.sh:18: --augment --n_train 10 --highp 1 --subspace_freq 2; README.md:166 iterations.
  c = paper_ffhq256.get_config('cdc,babies')
  assert c.hparams.augment == 'ada' and c.hparams.augment_p == 0.0
  kw = run_config.method_kwargs(c)['cdc']
  assert (kw['subspace_freq'], kw['highp'], kw['n_train']) == (2, 1, 10)
  assert c.steps == 1000 and paper_ffhq256.get_config('cdc,sunglasses').steps == 1000
  assert paper_ffhq256.get_config('cdc,sketches').steps == 5000
  assert paper_ffhq256.get_config('tgan_ada,babies').steps == 1000
  # train.py's argparse defaults stay reachable: no --augment, --subspace_freq 4, 5000.
  p = paper_ffhq256.get_config('cdc_argparse,babies')
  assert p.hparams.augment == '' and p.steps == 5000 and p.method.names == 'cdc'
  assert 'cdc' not in run_config.method_kwargs(p)
  get_method(run_config.method_names(c), **run_config.method_kwargs(c))


def test_cdc_counts_its_predictions_signs_as_train_py():
  """CDC's `ada_signs`: on anchor steps the image logit once (its `disc` broadcasts it
  over the patch columns), on patch steps every patch of the chosen map once (a 16 px
  head is nearest-upsampled 2x2 to 32 px here): `torch.sign(real_pred).sum()`."""
  import types  # pylint: disable=g-import-not-at-top
  from fsig_jax.methods.cdc import cdc, patch_layers  # pylint: disable=g-import-not-at-top
  from fsig_jax.models import presets  # pylint: disable=g-import-not-at-top
  cfg = presets.parse_random_spec('random:anime64')
  assert [size for _, size, _ in patch_layers(cfg)] == [32, 32, 16, 16]
  hook = cdc(highp=4, subspace_freq=2).ada_signs
  key = next(k for k in (jax.random.PRNGKey(i) for i in range(50))
             if int(jax.random.randint(jax.random.fold_in(k, 0), (), 0, 4)) >= 2)  # a 16 px map
  ctx = lambda step: types.SimpleNamespace(models=types.SimpleNamespace(cfg=cfg),  # noqa: E731
                                           step=jnp.int32(step), key=key)
  small = jnp.sign(jax.random.normal(jax.random.PRNGKey(7), (2, 16, 16)))
  big = jnp.repeat(jnp.repeat(small, 2, axis=1), 2, axis=2).reshape(2, -1)
  assert float(hook(ctx(1), big, {})) == float(small.sum())
  image = jnp.array([[0.3], [-2.0]])
  assert float(hook(ctx(2), jnp.broadcast_to(image, (2, 1024)), {})) == 0.0
  assert float(hook(ctx(2), jnp.broadcast_to(jnp.abs(image), (2, 1024)), {})) == 2.0


def test_fixed_p_above_the_leak_threshold_is_warned_about():
  """augment='ada' keeps DiffAugment's augment_p default of 1.0 unless a config sets
  0 (adaptive): a fixed p that leaks is allowed but named, with the fix."""
  from fsig_jax.engine import hparams  # pylint: disable=g-import-not-at-top
  (msg,) = hparams.warnings(tiny_hparams(augment='ada'))
  assert 'augment_p=1' in msg and '--config.hparams.augment_p=0' in msg
  for ok in (tiny_hparams(augment='ada', augment_p=0.0),
             tiny_hparams(augment='ada', augment_p=0.5),
             tiny_hparams(augment='color,translation'), tiny_hparams()):
    assert hparams.warnings(ok) == []
  assert hparams.warnings(offline.get_config('tgan_ada,babies').hparams) == []
