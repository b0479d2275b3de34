"""SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from
error visibility to structural similarity", Eq. 13 with the Sec. III-C window).

Following the authors' reference `ssim_index.m`: an 11x11 Gaussian window with
sigma 1.5 (normalized to sum 1), K1 = 0.01, K2 = 0.03, C_i = (K_i L)^2 with the
data range L = 1 (our [-1, 1] images are mapped to [0, 1] first), local
statistics by 'valid' filtering (no padding), and the mean of the SSIM map.
Colour images: SSIM per channel, averaged over channels.
"""
import functools

import jax
import jax.numpy as jnp

from fsig_jax.nn.gaussian import gaussian_filter, gaussian_window_1d

WINDOW_SIZE = 11  # Wang et al. 2004, Sec. III-C.
SIGMA = 1.5  # Same.
K1, K2 = 0.01, 0.03  # Same.


@functools.partial(jax.jit, static_argnames=("window_size", "sigma"))
def _ssim(x, y, window_size, sigma):
  x = (x.astype(jnp.float32) + 1.0) / 2.0
  y = (y.astype(jnp.float32) + 1.0) / 2.0
  g = gaussian_window_1d(window_size, sigma)
  c1, c2 = K1 ** 2, K2 ** 2  # Data range L = 1.
  mu_x, mu_y = gaussian_filter(x, g), gaussian_filter(y, g)
  sxx = gaussian_filter(x * x, g) - mu_x ** 2
  syy = gaussian_filter(y * y, g) - mu_y ** 2
  sxy = gaussian_filter(x * y, g) - mu_x * mu_y
  num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
  ssim_map = num / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
  return jnp.mean(ssim_map, axis=(1, 2, 3))


def ssim(x, y, window_size: int = WINDOW_SIZE, sigma: float = SIGMA):
  """Mean SSIM of matching images in two NHWC [-1, 1] batches -> (N,) float32.

  jit-compatible. Images must be at least `window_size` pixels on each side.
  """
  x, y = jnp.asarray(x), jnp.asarray(y)
  if x.ndim != 4 or x.shape != y.shape:
    raise ValueError(f"SSIM needs two NHWC batches of one shape, got {x.shape} and {y.shape}.")
  if min(x.shape[1:3]) < window_size:
    raise ValueError(f"SSIM needs images of at least {window_size}x{window_size} px, "
                     f"got {x.shape[1:3]}.")
  return _ssim(x, y, window_size, float(sigma))
