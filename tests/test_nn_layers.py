"""Layer checks against independent references (scipy, explicit loops)."""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from fsig_jax.nn import upfirdn
from fsig_jax.nn.equalized import bias_act
from fsig_jax.nn.mbstd import minibatch_stddev
from fsig_jax.nn.conv import conv_transpose_up2 as transposed_conv2x
from fsig_jax.nn.modulated import modulated_conv2d

RNG = np.random.default_rng(0)


def _ref_upfirdn(x, f, up, down, pad, gain):
  """Zero-insert, pad, scipy true convolution, stride: the textbook definition."""
  n, h, w, c = x.shape
  u = np.zeros((n, h * up, w * up, c), x.dtype)
  u[:, ::up, ::up] = x
  p0, p1 = pad
  u = np.pad(u, [(0, 0), (p0, p1), (p0, p1), (0, 0)])
  out = np.stack([np.stack([signal.convolve2d(u[i, :, :, ch], f * gain, mode='valid')
                            for ch in range(c)], -1) for i in range(n)])
  return out[:, ::down, ::down]


@pytest.mark.parametrize('kind', ['general', 'separable'])
@pytest.mark.parametrize('up,down,pad,gain', [(1, 1, (1, 2), 1.0), (2, 1, (2, 1), 4.0),
                                              (1, 2, (2, 2), 1.0), (2, 2, (1, 1), 4.0)])
def test_upfirdn2d_matches_scipy(up, down, pad, gain, kind):
  x = RNG.normal(size=(2, 7, 7, 3)).astype(np.float32)
  if kind == 'general':  # a full-rank filter takes the depthwise-conv path
    f = RNG.uniform(size=(4, 4)).astype(np.float32)  # asymmetric: checks the flip
  else:  # rank 1: the shifted-slice path; asymmetric taps check the flip per axis
    f = np.outer([1.0, 2.0, 5.0, 3.0], [4.0, 1.0, 0.5, 2.0]).astype(np.float32)
  got = upfirdn.upfirdn2d(jnp.asarray(x), f, up=up, down=down, padding=pad, gain=gain)
  np.testing.assert_allclose(got, _ref_upfirdn(x, f, up, down, pad, gain), rtol=1e-5, atol=1e-5)


def test_upfirdn2d_negative_padding_crops():
  x = RNG.normal(size=(1, 8, 8, 1)).astype(np.float32)
  f = np.ones((1, 1), np.float32)
  got = upfirdn.upfirdn2d(jnp.asarray(x), f, padding=(-1, -2))
  np.testing.assert_allclose(got, x[:, 1:-2, 1:-2], atol=0)


def test_upsample_keeps_constant_images():
  x = jnp.full((1, 6, 6, 2), 3.0)
  y = upfirdn.upsample2d(x, upfirdn.setup_filter((1, 3, 3, 1)))
  assert y.shape == (1, 12, 12, 2)
  np.testing.assert_allclose(y[:, 2:-2, 2:-2], 3.0, rtol=1e-6)  # interior, away from zero padding


def test_transposed_conv_matches_scatter_definition():
  x = RNG.normal(size=(2, 5, 4, 3)).astype(np.float32)
  w = RNG.normal(size=(3, 3, 3, 6)).astype(np.float32)  # HWIO
  n, h, wd, _ = x.shape
  ref = np.zeros((n, 2 * h + 1, 2 * wd + 1, 6), np.float32)
  for qy in range(h):
    for qx in range(wd):
      ref[:, 2 * qy:2 * qy + 3, 2 * qx:2 * qx + 3] += np.einsum('ni,hwio->nhwo', x[:, qy, qx], w)
  np.testing.assert_allclose(transposed_conv2x(jnp.asarray(x), jnp.asarray(w)), ref, atol=1e-4)


@pytest.mark.parametrize('up,demod', [(1, True), (2, True), (1, False)])
def test_modulated_conv_matches_per_sample_fused_weights(up, demod):
  """The official 'fused' definition: a separate modulated kernel per sample."""
  x = RNG.normal(size=(3, 6, 6, 4)).astype(np.float32)
  k = 3 if demod else 1
  w = RNG.normal(size=(k, k, 4, 5)).astype(np.float32)
  s = RNG.normal(size=(3, 4)).astype(np.float32) + 1
  got = modulated_conv2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(s), up=up, demodulate=demod)
  f = upfirdn.setup_filter((1, 3, 3, 1))
  for i in range(3):
    wi = w * s[i][None, None, :, None] / math.sqrt(4 * k * k)
    if demod:
      wi = wi / np.sqrt((wi ** 2).sum(axis=(0, 1, 2)) + 1e-8)
    if up == 2:
      yi = transposed_conv2x(jnp.asarray(x[i:i + 1]), jnp.asarray(wi))
      yi = _ref_upfirdn(np.asarray(yi), f, 1, 1, (1, 1), 4.0)
    else:
      yi = jax.lax.conv_general_dilated(x[i:i + 1], wi, (1, 1), [(k // 2, k // 2)] * 2,
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    np.testing.assert_allclose(got[i:i + 1], yi, atol=1e-4)
  assert got.shape[1] == 6 * up


def test_minibatch_stddev_matches_loop():
  x = RNG.normal(size=(8, 3, 3, 6)).astype(np.float32)
  got = np.asarray(minibatch_stddev(jnp.asarray(x), group_size=4, num_features=2))
  assert got.shape == (8, 3, 3, 8)
  m = 8 // 4
  for i in range(8):
    members = [j for j in range(8) if j % m == i % m]  # reshape(G, -1) grouping
    for f in range(2):
      feat = x[members][..., f * 3:(f + 1) * 3]
      want = np.sqrt(feat.var(axis=0) + 1e-8).mean()
      np.testing.assert_allclose(got[i, :, :, 6 + f], want, rtol=1e-5)


def test_minibatch_stddev_rejects_indivisible_batch():
  with pytest.raises(ValueError, match='not divisible'):
    minibatch_stddev(jnp.zeros((6, 4, 4, 2)), group_size=4)


def test_bias_act_lrelu_gain_and_clamp():
  x = jnp.array([-2.0, 0.5, 300.0])
  np.testing.assert_allclose(bias_act(x, jnp.array(1.0), 'lrelu'),
                             [-0.2 * math.sqrt(2), 1.5 * math.sqrt(2), 301 * math.sqrt(2)], rtol=1e-6)
  np.testing.assert_allclose(bias_act(x, None, 'linear', clamp=256.0), [-2.0, 0.5, 256.0])


@pytest.mark.parametrize('op,k,size,pad', [
    ('s1', 3, 9, 1), ('s1', 3, 8, 0), ('s1', 1, 8, 0), ('s1', 3, 7, ((2, 0), (1, 2))),
    ('s1', 1, 6, 2), ('s2', 3, 10, 0), ('s2', 3, 9, 0), ('s2', 1, 10, 0), ('s2', 3, 9, 1),
    ('s2', 4, 11, ((1, 2), (0, 1))), ('up', 3, 7, None), ('up', 4, 6, None)])
def test_cpu_convs_match_native_with_gradients(op, k, size, pad):
  """The CPU forms ('im2col'; 'hybrid' with its custom VJP) equal XLA's
  convolutions under jit, in value, in the gradients w.r.t. x and w, and in
  second derivatives (R1 differentiates the squared dL/dx w.r.t. w). The
  cases cover each of hybrid's routes: XLA's conv ('same' 3x3), the matmul
  (1x1), and the custom VJP (stride 2, other paddings, the 2x2 kernel of 'up')."""
  from fsig_jax.nn import conv
  fn = {'s1': lambda x, w, impl: conv.conv2d(x, w, padding=pad, impl=impl),
        's2': lambda x, w, impl: conv.conv2d(x, w, stride=2, padding=pad, impl=impl),
        'up': lambda x, w, impl: conv.conv_transpose_up2(x, w, impl=impl)}[op]
  x = jnp.asarray(RNG.normal(size=(2, size, size, 3)).astype(np.float32))
  w = jnp.asarray(RNG.normal(size=(k, k, 3, 5)).astype(np.float32))
  t = jnp.asarray(RNG.normal(size=fn(x, w, 'native').shape).astype(np.float32))
  loss = lambda x, w, impl: jnp.sum(jnp.tanh(fn(x, w, impl)) * t)  # noqa: E731
  r1 = lambda w, impl: jnp.sum(jnp.square(jax.grad(loss)(x, w, impl)))  # noqa: E731
  run = lambda impl: (jax.jit(fn, static_argnums=2)(x, w, impl),  # noqa: E731
                      *jax.jit(jax.grad(loss, (0, 1)), static_argnums=2)(x, w, impl),
                      jax.jit(jax.grad(r1), static_argnums=1)(w, impl))
  want = run('native')
  for impl in ('im2col', 'hybrid'):
    for name, u, v, tol in zip(('value', 'dx', 'dw', 'R1 dw'), want, run(impl),
                               (1e-4, 1e-4, 1e-4, 1e-3)):
      np.testing.assert_allclose(v, u, rtol=1e-4, atol=tol, err_msg=f'{impl} {name}')


@pytest.mark.parametrize('op', ['same', 's2', 'up'])
def test_hybrid_derivatives_of_every_order_are_canonical_convs(op):
  """Every convolution in hybrid's first and second derivatives (R1, path
  length) is NHWC x HWIO -> NHWC, as the program JAX hands XLA: XLA's CPU pass
  that transposes other layouts into that form does not reach the branches of
  a lax.cond, where the lazily regularised steps run, and the other layouts
  then run on a generic loop 100x slower (benchmarks/results/conv_impl_cpu.md,
  session 11). Fails when a derivative reaches XLA's own convolution rules
  (whose weight gradient is labelled f01b_i01o->01bf), e.g. through a custom
  VJP's forward that calls lax directly."""
  from fsig_jax.nn import conv
  fn = {'same': lambda x, w: conv.conv2d(x, w, padding=1, impl='hybrid'),
        's2': lambda x, w: conv.conv2d(x, w, stride=2, impl='hybrid'),
        'up': lambda x, w: conv.conv_transpose_up2(x, w, impl='hybrid')}[op]
  x, w = jnp.ones((2, 9, 9, 3)), jnp.ones((3, 3, 3, 4))
  loss = lambda x, w: jnp.sum(jnp.tanh(fn(jnp.tanh(fn(x, w)[..., :3]), w)))  # noqa: E731
  r1 = lambda x, w: jnp.sum(jnp.square(jax.grad(loss)(x, w)))  # noqa: E731
  hlo = jax.jit(jax.grad(r1, (0, 1))).lower(x, w).as_text(dialect='hlo')
  labels = re.findall(r'convolution\(.*?dim_labels=([^,\s]+)', hlo)
  assert set(labels) <= {'b01f_01io->b01f'}, labels
  assert labels or op == 's2'  # hybrid's stride-2 forward is the im2col product


def test_hybrid_is_the_cpu_default(monkeypatch):
  from fsig_jax.nn import conv
  monkeypatch.delenv('FSIG_CONV_IMPL', raising=False)
  assert conv.default_impl() == ('hybrid' if jax.default_backend() == 'cpu' else 'native')
  monkeypatch.setenv('FSIG_CONV_IMPL', 'im2col')
  assert conv.default_impl() == 'im2col'


def test_conv_impl_names_the_choices():
  from fsig_jax.nn import conv
  with pytest.raises(ValueError, match="native.*im2col.*hybrid.*FSIG_CONV_IMPL"):
    conv.conv2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), impl='fast')
