"""GPD students (U-Net + MSPADE, pix2pix U-Net), SPADE, instance norm, PatchGAN."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsig_jax.models import students
from fsig_jax.models.students import Pix2PixConfig, UNetMSPADEConfig
from fsig_jax.nn import patchgan
from fsig_jax.nn.norm import instance_norm
from fsig_jax.nn.spade import SPADE

KEY = jax.random.PRNGKey(0)


def tiny_configs(res):
  return [UNetMSPADEConfig(resolution=res, base_channels=4, max_channels=8,
                           bottom_resolution=4, spade_hidden=4),
          Pix2PixConfig(resolution=res, ngf=4, max_channels=8)]


def images(res, n=2, key=1):
  return jax.random.uniform(jax.random.PRNGKey(key), (n, res, res, 3), minval=-1, maxval=1)


@pytest.mark.parametrize('res', [16, 64])
@pytest.mark.parametrize('arch', ['unet_mspade', 'pix2pix'])
def test_output_shape_and_range(res, arch):
  cfg = {c.arch: c for c in tiny_configs(res)}[arch]
  params = students.init_student(cfg, KEY)
  y = students.apply_student(cfg, params, 3.0 * images(res))  # large inputs: tanh still bounds
  assert y.shape == (2, res, res, 3)
  assert bool(jnp.all(jnp.abs(y) <= 1.0)) and bool(jnp.all(jnp.isfinite(y)))
  assert float(jnp.std(y)) > 0


@pytest.mark.parametrize('cfg', [UNetMSPADEConfig(resolution=256), Pix2PixConfig(resolution=256)],
                         ids=lambda c: c.arch)
def test_default_width_256_shapes(cfg):
  x = jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32)
  params = jax.eval_shape(lambda: students.init_student(cfg, KEY))
  y = jax.eval_shape(lambda p, x: students.apply_student(cfg, p, x), params, x)
  assert y.shape == (2, 256, 256, 3)
  if cfg.arch == 'pix2pix':  # official unet_256: 8 downs, 512 at the bottom
    assert params['down7']['kernel'].shape == (4, 4, 512, 512)
    assert params['up0']['kernel'].shape == (4, 4, 128, 3)
  else:
    assert set(k for k in params if k.startswith('dec')) == {'dec8', 'dec16', 'dec32', 'dec64',
                                                             'dec128', 'dec256'}


def test_wrong_input_shape():
  cfg = tiny_configs(16)[0]
  params = students.init_student(cfg, KEY)
  with pytest.raises(ValueError, match='16, 16, 3'):
    students.apply_student(cfg, params, jnp.zeros((1, 32, 32, 3)))


def test_instance_norm_matches_numpy():
  x = np.asarray(jax.random.normal(KEY, (2, 5, 3, 4))) * 3 + 1
  mean = x.mean(axis=(1, 2), keepdims=True)
  var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)  # biased
  np.testing.assert_allclose(instance_norm(jnp.asarray(x)), (x - mean) / np.sqrt(var + 1e-5),
                             rtol=1e-5, atol=1e-5)


def test_spade_zero_weights_is_instance_norm():
  x, cond = images(8), images(4, key=2)
  module = SPADE(hidden=4)
  params = module.init(KEY, x, cond)
  zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
  np.testing.assert_array_equal(module.apply(zeros, x, cond), instance_norm(x))


@pytest.mark.parametrize('cond_size', [2, 1])  # 1: nearest resize to 2x2 first
def test_spade_constant_weights_by_hand(cond_size):
  """1x2x2x1 input, hidden 1, 3x3 kernels: on a 2x2 map every SAME 3x3 window
  covers all four pixels, so each conv output is weight * sum(map) + bias."""
  x = jnp.array([1., 2., 3., 4.]).reshape(1, 2, 2, 1)
  cond = (jnp.array([0.5, -1., 2., 1.5]).reshape(1, 2, 2, 1) if cond_size == 2
          else jnp.full((1, 1, 1, 1), 1.5))
  a, b, g, bg, e, be = 0.1, -0.2, 0.3, 0.05, -0.4, 0.1
  module = SPADE(hidden=1, kernel=3)
  full = lambda v: jnp.full((3, 3, 1, 1), v)
  params = {'mlp_shared': {'kernel': full(a), 'bias': jnp.array([b])},
            'mlp_gamma': {'kernel': full(g), 'bias': jnp.array([bg])},
            'mlp_beta': {'kernel': full(e), 'bias': jnp.array([be])}}
  csum = 0.5 - 1. + 2. + 1.5 if cond_size == 2 else 4 * 1.5  # sum of the cond map at 2x2
  shared = max(a * csum + b, 0.0)
  gamma, beta = g * 4 * shared + bg, e * 4 * shared + be
  xs = np.array([1., 2., 3., 4.])
  norm = (xs - 2.5) / np.sqrt(1.25 + 1e-5)
  want = (norm * (1 + gamma) + beta).reshape(1, 2, 2, 1)
  assert shared > 0
  np.testing.assert_allclose(module.apply({'params': params}, x, cond), want, rtol=1e-6, atol=1e-6)


def test_receptive_field_analytic_and_inverse():
  assert [patchgan.receptive_field(n) for n in (1, 3, 5)] == [16, 70, 286]
  assert [patchgan.n_layers_for(rf) for rf in (16, 70, 286)] == [1, 3, 5]
  with pytest.raises(ValueError, match=r'16 \(n_layers=1\), 34 \(n_layers=2\), 70'):
    patchgan.n_layers_for(64)


@pytest.mark.parametrize('n_layers,size', [(1, 32), (3, 128)])
def test_receptive_field_empirical(n_layers, size):
  """The input pixels on which one central logit depends span exactly the
  receptive field along each axis (no norm, so only the convs couple pixels)."""
  d = patchgan.PatchGAN(ndf=2, n_layers=n_layers, norm='none')
  x = jax.random.normal(KEY, (1, size, size, 3))
  params = d.init(jax.random.PRNGKey(3), x)
  out_hw = d.apply(params, x).shape[1:3]
  ci, cj = out_hw[0] // 2, out_hw[1] // 2
  grad = jax.grad(lambda x: d.apply(params, x)[0, ci, cj, 0])(x)
  mag = np.asarray(jnp.abs(grad[0]).sum(-1))
  rows, cols = np.nonzero(mag.sum(1))[0], np.nonzero(mag.sum(0))[0]
  for idx in (rows, cols):
    assert idx.size and idx[0] > 0 and idx[-1] < size - 1  # not clipped by the border
    assert idx[-1] - idx[0] + 1 == idx.size  # contiguous
    assert idx.size == patchgan.receptive_field(n_layers) == {1: 16, 3: 70}[n_layers]


def test_patchgan_shapes_and_norm():
  x = images(32)
  for norm in ('instance', 'none'):
    d = patchgan.PatchGAN(ndf=2, n_layers=2, norm=norm)
    assert d.apply(d.init(KEY, x), x).shape == (2, 6, 6, 1)  # 32 -> 16 -> 8 -> 7 -> 6
  with pytest.raises(ValueError, match='norm'):
    patchgan.PatchGAN(norm='batch').init(KEY, x)


def test_pix2pix_dropout():
  cfg = tiny_configs(16)[1]
  params = students.init_student(cfg, KEY)
  x = images(16)
  a = students.apply_student(cfg, params, x)
  np.testing.assert_array_equal(a, students.apply_student(cfg, params, x))
  k1 = students.apply_student(cfg, params, x, key=jax.random.PRNGKey(1))
  k2 = students.apply_student(cfg, params, x, key=jax.random.PRNGKey(2))
  np.testing.assert_array_equal(k1, students.apply_student(cfg, params, x, key=jax.random.PRNGKey(1)))
  assert float(jnp.max(jnp.abs(k1 - k2))) > 1e-4
  assert float(jnp.max(jnp.abs(k1 - a))) > 1e-4


def test_unet_mspade_ignores_key():
  cfg = tiny_configs(16)[0]
  params = students.init_student(cfg, KEY)
  x = images(16)
  np.testing.assert_array_equal(students.apply_student(cfg, params, x),
                                students.apply_student(cfg, params, x, key=KEY))


def test_param_count():
  for cfg in tiny_configs(16):
    params = students.init_student(cfg, KEY)
    want = jax.tree_util.tree_reduce(lambda s, a: s + a.size, params, 0)
    assert students.param_count(params) == want > 0


def test_configs_round_trip_and_network():
  for cfg in tiny_configs(16):
    assert students.CONFIGS[cfg.arch].from_dict(dataclasses.asdict(cfg)) == cfg
    assert students.network(cfg).config == cfg
  with pytest.raises(ValueError, match='not a student config'):
    students.network(object())


@pytest.mark.parametrize('cls,kwargs,match', [
    (UNetMSPADEConfig, {'resolution': 48}, 'power of two'),
    (UNetMSPADEConfig, {'resolution': 4}, 'bottom_resolution'),
    (UNetMSPADEConfig, {'bottom_resolution': 6}, 'bottom_resolution'),
    (UNetMSPADEConfig, {'max_channels': 16}, 'max_channels'),
    (UNetMSPADEConfig, {'spade_hidden': 0}, 'spade_hidden'),
    (UNetMSPADEConfig, {'arch': 'pix2pix'}, 'arch'),
    (Pix2PixConfig, {'resolution': 100}, 'power of two'),
    (Pix2PixConfig, {'resolution': 2}, 'power of two'),
    (Pix2PixConfig, {'dropout': 1.0}, 'dropout'),
    (Pix2PixConfig, {'ngf': 0}, 'ngf'),
    (Pix2PixConfig, {'max_channels': 32}, 'max_channels'),
    (Pix2PixConfig, {'nope': 1}, 'unknown'),
])
def test_config_validation(cls, kwargs, match):
  with pytest.raises(ValueError, match=match):
    cls.from_dict(kwargs)
