"""Separable Gaussian filtering of NHWC maps, channel by channel.

Shared by the SSIM metric (`fsig_jax.metrics.ssim`, Wang et al. 2004) and SSIM on
activations (`fsig_jax.losses.relation.ssim_a`): a normalised 1-D Gaussian applied
along H then along W, each channel on its own, with no padding ('valid') or zero
padding that keeps the size ('same', odd windows).
"""
import jax
import jax.numpy as jnp
import numpy as np

PADDINGS = ('valid', 'same')


def gaussian_window_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  """Normalized 1-D Gaussian; its outer product is MATLAB's fspecial('gaussian', size, sigma)."""
  r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-r * r / (2.0 * sigma * sigma))
  return (g / g.sum()).astype(np.float32)


def band_matrix(n: int, g: np.ndarray, padding: str = 'valid') -> np.ndarray:
  """(n', n) matrix T with (T v)[i] = sum_t g[t] v[i + t - r]: the 1-D filter along an
  axis of length n as a matrix (r = 0 for 'valid', (len(g) - 1) / 2 zeros of
  padding for 'same'; entries outside the input are the padding's zeros)."""
  k = len(g)
  r = (k - 1) // 2 if padding == 'same' else 0
  out = n if padding == 'same' else n - k + 1
  t = np.zeros((out, n), np.float32)
  for i in range(out):
    for j in range(max(0, i - r), min(n, i - r + k)):
      t[i, j] = g[j - i + r]
  return t


def gaussian_filter(x: jax.Array, g: np.ndarray, padding: str = 'valid') -> jax.Array:
  """Filters each channel of an NHWC batch with outer(g, g) -> (N, C, H', W').

  The output is channel-first (the SSIM callers only average it). 'valid' gives
  H' = H - len(g) + 1; 'same' pads each side with (len(g) - 1) / 2 zeros first,
  exactly a zero-padded 2-D convolution with the separable window, so H' = H.
  Full float32 precision (no TF32).

  Computed as two matrix products with banded matrices (`band_matrix`),
  T_H x T_W^T per channel, rather than as depthwise convolutions: on CPU the
  matmuls run 10-20x faster for the map sizes of a StyleGAN2 (8-64 px, 92 pairs
  of 128-512 channels; same result within 3e-7), which is most of SSIM-A's cost
  in KD-FSIG (benchmarks/step_time.py).
  """
  if padding not in PADDINGS:
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
  _, h, w, _ = x.shape
  k = len(g)
  if padding == 'same' and k % 2 != 1:
    raise ValueError(f"'same' padding needs an odd window, got {k}")
  if padding == 'valid' and (h < k or w < k):
    raise ValueError(f"'valid' filtering needs maps of at least {k} x {k}, got {h} x {w}")
  g = np.asarray(g, np.float32)
  th = jnp.asarray(band_matrix(h, g, padding), x.dtype)
  tw = jnp.asarray(band_matrix(w, g, padding), x.dtype)
  hi = jax.lax.Precision.HIGHEST
  y = jnp.einsum('ph,nhwc->npwc', th, x, precision=hi)
  return jnp.einsum('qw,npwc->ncpq', tw, y, precision=hi)
