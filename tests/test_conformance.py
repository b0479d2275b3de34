"""Parity with the official PyTorch code on ../shared/conformance (see its README).

Our outputs must match the arrays the official code produced within 1e-3 max
absolute difference: plain, truncated and style-mixed images, and D logits.
"""
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import fsig_jax
from conftest import shared_path
from engine_utils import leaves_with_paths

TOL = 1e-3


def nchw(x):
  return np.transpose(np.asarray(x), (0, 3, 1, 2))


def nhwc(x):
  return np.transpose(np.asarray(x), (0, 2, 3, 1))


def assert_close(got, want, what):
  err = float(np.max(np.abs(got - want)))
  assert got.shape == want.shape, (what, got.shape, want.shape)
  assert err < TOL, f'{what}: max abs diff {err:.2e} >= {TOL}'
  return err


@pytest.fixture(scope='module')
def rosinality():
  path = shared_path('conformance', 'rosinality_32px.pt')
  exp = dict(np.load(shared_path('conformance', 'rosinality_32px_expected.npz')))
  return fsig_jax.load_pretrained(path), exp


@pytest.fixture(scope='module')
def ada():
  path = shared_path('conformance', 'ada_32px.pkl')
  exp = dict(np.load(shared_path('conformance', 'ada_32px_expected.npz')))
  return fsig_jax.load_pretrained(path), exp


def test_rosinality_architecture_read_from_tensors(rosinality):
  bundle, _ = rosinality
  cfg = bundle.config
  assert (cfg.resolution, cfg.z_dim, cfg.w_dim, cfg.n_mlp) == (32, 64, 64, 2)
  assert cfg.g_channels == (64, 64, 48, 32)
  assert cfg.d_channels == (64, 64, 48, 32)
  assert sorted(bundle.nets) == ['D', 'G', 'G_ema']


def test_rosinality_images(rosinality):
  bundle, e = rosinality
  assert_close(nchw(bundle.generate(e['z'])), e['img'], 'img')


def test_rosinality_truncated(rosinality):
  bundle, e = rosinality
  got = bundle.generate(e['z'], truncation=0.7, truncation_latent=e['mean_latent'][0])
  assert_close(nchw(got), e['img_trunc'], 'img_trunc')


def test_rosinality_style_mixing(rosinality):
  bundle, e = rosinality
  got = bundle.generate(e['z'], e['z2'], inject_index=4)
  assert_close(nchw(got), e['img_mix'], 'img_mix')


def test_rosinality_discriminator(rosinality):
  bundle, e = rosinality
  assert_close(np.asarray(bundle.discriminate(nhwc(e['img']))), e['d_logits'], 'd_logits')


def test_ada_architecture_read_from_tensors(ada):
  bundle, e = ada
  cfg = bundle.config
  assert (cfg.resolution, cfg.z_dim, cfg.w_dim, cfg.n_mlp) == (32, 64, 64, 2)
  assert cfg.g_channels == (64, 64, 64, 64) and cfg.mbstd_group == 4
  assert cfg.g_conv_clamp is None and cfg.lr_mul == pytest.approx(0.01)
  np.testing.assert_array_equal(np.asarray(bundle.w_avg), e['w_avg'])


def test_ada_images(ada):
  bundle, e = ada
  assert_close(nchw(bundle.generate(e['z'])), e['img'], 'img')


def test_ada_truncated(ada):
  bundle, e = ada
  assert_close(nchw(bundle.generate(e['z'], truncation=0.7)), e['img_trunc'], 'img_trunc')


def test_ada_discriminator(ada):
  bundle, e = ada
  assert_close(np.asarray(bundle.discriminate(nhwc(e['img']))), e['d_logits'], 'd_logits')


def test_ada_seeds_and_style_mixing(ada):
  """ada's style_mixing.py semantics against NVIDIA's own code on the conformance
  pickle (golden made by tests/goldens/make_ada_style_mixing.py): seeds -> z,
  truncated w, and the rows' w with the columns' styles 0-3."""
  bundle, _ = ada
  g = np.load(pathlib.Path(__file__).parent / 'goldens' / 'ada_32px_style_mixing.npz')
  seeds = [int(s) for s in g['seeds']]
  np.testing.assert_array_equal(bundle.seed_z(seeds), g['z'])
  ws = np.asarray(bundle.map(g['z'], truncation=float(g['psi'])))
  assert np.max(np.abs(ws[:, 0] - g['w'][:, 0])) < 1e-4
  assert_close(nchw(bundle.synthesize(ws)), g['img'], 'img of the seeds')
  w_of = dict(zip(seeds, ws))
  styles = list(g['styles'])
  mixed = []
  for r in g['rows']:
    for c in g['cols']:
      m = w_of[int(r)].copy()
      m[styles] = w_of[int(c)][styles]
      mixed.append(m)
  assert_close(nchw(bundle.synthesize(np.stack(mixed))), g['img_mix'], 'img_mix')


@pytest.mark.parametrize('which', ['rosinality', 'ada'])
def test_orbax_round_trip_is_exact(which, request, tmp_path):
  bundle, e = request.getfixturevalue(which)
  path = fsig_jax.save_bundle(bundle, str(tmp_path / 'ckpt'))
  again = fsig_jax.load_pretrained(path)
  assert again.config == bundle.config and sorted(again.nets) == sorted(bundle.nets)
  np.testing.assert_array_equal(again.generate(e['z'], truncation=0.7),
                                bundle.generate(e['z'], truncation=0.7))
  np.testing.assert_array_equal(again.discriminate(nhwc(e['img'])),
                                bundle.discriminate(nhwc(e['img'])))


def test_float16_storage_of_a_net(rosinality, tmp_path):
  """The shipped model stores D as float16: read back as float32, G untouched."""
  bundle, _ = rosinality
  full = fsig_jax.save_bundle(bundle, str(tmp_path / 'f32'))
  half = fsig_jax.save_bundle(bundle, str(tmp_path / 'f16'), float16=['D'])
  (tmp_path / 'f16' / 'MODEL_CARD.md').write_text('notes beside the checkpoint are fine')
  again = fsig_jax.load_pretrained(half)
  for name in bundle.nets:
    want, got = leaves_with_paths(bundle.nets[name]), leaves_with_paths(again.nets[name])
    assert sorted(want) == sorted(got)
    for k, w in want.items():
      assert got[k].dtype == w.dtype, (name, k)
      expect = w.astype(np.float16).astype(np.float32) if name == 'D' else w
      np.testing.assert_array_equal(got[k], expect, err_msg=f'{name}{k}')
  size = lambda p: sum(f.stat().st_size for f in p.rglob('*') if f.is_file())  # noqa: E731
  d_bytes = sum(v.nbytes for v in leaves_with_paths(bundle.nets['D']).values())
  assert size(tmp_path / 'f16') < size(pathlib.Path(full)) - 0.4 * d_bytes  # D at half size
  with pytest.raises(ValueError, match='Dx.*no such nets'):
    fsig_jax.save_bundle(bundle, str(tmp_path / 'bad'), float16=['Dx'])


def test_the_conv_path_is_the_one_requested(rosinality):
  """The traced generator's convolutions are those of the requested path:
  native (the suite's default) XLA's convolution with no custom derivative;
  im2col no convolution at all; hybrid (the CPU default, run by the slow
  parity test below) XLA's convolution inside custom VJPs."""
  import jax  # pylint: disable=g-import-not-at-top
  bundle, e = rosinality
  text = str(jax.make_jaxpr(lambda z: bundle.generate(z))(e['z']))
  convs, custom = text.count('conv_general_dilated'), text.count('custom_vjp_call')
  impl = os.environ.get('FSIG_CONV_IMPL')
  if impl == 'im2col':
    assert convs == 0 and custom == 0, (convs, custom)
  elif impl == 'hybrid':
    assert convs > 0 and custom > 0, (convs, custom)
  else:
    assert convs > 0 and custom == 0, (convs, custom)


@pytest.mark.slow
def test_parity_on_the_cpu_default_path():
  """The suite runs with XLA's native convolutions and cheap compile mode
  (conftest.py); users on CPU get the hybrid convolutions (fsig_jax/nn/conv.py)
  and full optimisation. The parity tests again, on that path, in a fresh
  process."""
  shared_path('conformance', 'rosinality_32px.pt')
  # 'hybrid' by name: the subprocess's conftest would otherwise set 'native'
  # (tests/test_nn_layers.py checks that hybrid is the CPU default).
  env = {**os.environ, 'FSIG_CONV_IMPL': 'hybrid', 'JAX_DISABLE_MOST_OPTIMIZATIONS': '0'}
  r = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', __file__, '-k',
       'images or truncated or mixing or discriminator or conv_path'],  # 9 tests
      cwd=pathlib.Path(__file__).parent.parent, env=env, capture_output=True, text=True,
      timeout=900)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
  assert re.search(r'^9 passed', r.stdout, re.M), r.stdout[-1000:]
