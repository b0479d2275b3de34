"""SSIM against a direct numpy/scipy implementation of Wang et al. 2004, plus properties."""
import jax
import numpy as np
from scipy import signal

from fsig_jax.metrics import ssim as ssim_lib


def _reference(x, y):
  """ssim_index.m for one HWC image pair in [-1, 1], channel-averaged, float64."""
  r = np.arange(11) - 5.0
  g = np.exp(-r ** 2 / (2 * 1.5 ** 2))
  win = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  vals = []
  for ch in range(x.shape[-1]):
    a, b = (x[..., ch] + 1) / 2, (y[..., ch] + 1) / 2
    f = lambda im: signal.correlate2d(im, win, mode="valid")
    ma, mb = f(a), f(b)
    saa, sbb, sab = f(a * a) - ma ** 2, f(b * b) - mb ** 2, f(a * b) - ma * mb
    m = ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma ** 2 + mb ** 2 + c1) * (saa + sbb + c2))
    vals.append(m.mean())
  return np.mean(vals)


def _pair(seed, noise=0.2, shape=(2, 16, 19, 3)):
  rng = np.random.RandomState(seed)
  x = np.tanh(rng.randn(*shape)).astype(np.float32)
  y = np.clip(x + noise * rng.randn(*shape), -1, 1).astype(np.float32)
  return x, y


def test_matches_reference():
  x, y = _pair(0)
  got = np.asarray(ssim_lib.ssim(x, y))
  want = [_reference(x[i].astype(np.float64), y[i].astype(np.float64)) for i in range(len(x))]
  np.testing.assert_allclose(got, want, atol=2e-5)


def test_properties():
  x, y = _pair(1)
  np.testing.assert_allclose(ssim_lib.ssim(x, x), 1.0, atol=1e-5)
  np.testing.assert_allclose(ssim_lib.ssim(x, y), ssim_lib.ssim(y, x), atol=1e-6)
  values = [float(ssim_lib.ssim(x, _pair(1, noise=s)[1])[0]) for s in (0.05, 0.2, 0.5)]
  assert values[0] > values[1] > values[2]
  jitted = jax.jit(ssim_lib.ssim)(x, y)
  np.testing.assert_allclose(jitted, ssim_lib.ssim(x, y), atol=1e-6)


def test_window_shape_matches_fspecial():
  g = ssim_lib.gaussian_window_1d()
  assert g.shape == (11,) and abs(g.sum() - 1) < 1e-6 and g.argmax() == 5
