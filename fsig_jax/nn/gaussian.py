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


def gaussian_filter(x: jax.Array, g: np.ndarray, padding: str = 'valid') -> jax.Array:
  """Filters each channel of an NHWC batch with outer(g, g) -> (N, C, H', W').

  The output is channel-first (the SSIM callers only average it). 'valid' gives
  H' = H - len(g) + 1; 'same' pads each side with (len(g) - 1) / 2 zeros first,
  exactly a zero-padded 2-D convolution with the separable window, so H' = H.
  Full float32 precision (no TF32).
  """
  if padding not in PADDINGS:
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
  n, h, w, c = x.shape
  k = len(g)
  if padding == 'same':
    if k % 2 != 1:
      raise ValueError(f"'same' padding needs an odd window, got {k}")
    pad_h, pad_w = [((k - 1) // 2,) * 2, (0, 0)], [(0, 0), ((k - 1) // 2,) * 2]
  else:
    pad_h = pad_w = "VALID"
  y = x.transpose(0, 3, 1, 2).reshape(n * c, 1, h, w)
  kh = jnp.asarray(g).reshape(1, 1, -1, 1)
  kw = jnp.asarray(g).reshape(1, 1, 1, -1)
  dn = ("NCHW", "OIHW", "NCHW")
  hi = jax.lax.Precision.HIGHEST
  y = jax.lax.conv_general_dilated(y, kh, (1, 1), pad_h, dimension_numbers=dn, precision=hi)
  y = jax.lax.conv_general_dilated(y, kw, (1, 1), pad_w, dimension_numbers=dn, precision=hi)
  return y.reshape(n, c, y.shape[2], y.shape[3])
