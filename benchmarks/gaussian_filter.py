"""Gaussian filtering (SSIM, SSIM-A) as banded matmuls vs as depthwise convolutions.

  python benchmarks/gaussian_filter.py

`fsig_jax.nn.gaussian.gaussian_filter` filters with two banded matrix products;
until session 8 it ran two depthwise convolutions (below, `conv_filter`, kept
here as the baseline). Both run in this process on the map shapes of KD-FSIG's
SSIM-A at 64 px (pairs x H x W x C), forward only, after one compile each, and
the script prints seconds per call (median of --repeats), the speed-up and the
largest difference.
"""
import statistics
import time

from absl import flags
import jax
import jax.numpy as jnp


from fsig_jax.nn.gaussian import gaussian_filter, gaussian_window_1d
from fsig_jax.utils.cli import run_main

REPEATS = flags.DEFINE_integer('repeats', 5, 'timed calls per implementation and shape')
SHAPES = ((92, 8, 8, 512), (92, 16, 16, 512), (92, 32, 32, 256), (46, 64, 64, 128))


def conv_filter(x, g, padding='same'):
  """The depthwise-convolution form (the former implementation)."""
  n, h, w, c = x.shape
  k = len(g)
  pad_h, pad_w = ([((k - 1) // 2,) * 2, (0, 0)], [(0, 0), ((k - 1) // 2,) * 2]) \
      if padding == 'same' else ('VALID', 'VALID')
  y = x.transpose(0, 3, 1, 2).reshape(n * c, 1, h, w)
  dn, hi = ('NCHW', 'OIHW', 'NCHW'), jax.lax.Precision.HIGHEST
  y = jax.lax.conv_general_dilated(y, jnp.asarray(g).reshape(1, 1, -1, 1), (1, 1), pad_h,
                                   dimension_numbers=dn, precision=hi)
  y = jax.lax.conv_general_dilated(y, jnp.asarray(g).reshape(1, 1, 1, -1), (1, 1), pad_w,
                                   dimension_numbers=dn, precision=hi)
  return y.reshape(n, c, y.shape[2], y.shape[3])


def timed(f, x):
  f(x).block_until_ready()
  times = []
  for _ in range(REPEATS.value):
    t = time.perf_counter()
    f(x).block_until_ready()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def main(argv):
  del argv
  g = gaussian_window_1d()
  mm = jax.jit(lambda x: gaussian_filter(x, g, 'same'))
  cv = jax.jit(lambda x: conv_filter(x, g, 'same'))
  print('| shape | conv s | matmul s | speed-up | max diff |\n|---|---|---|---|---|')
  for shape in SHAPES:
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    diff = float(jnp.max(jnp.abs(mm(x) - cv(x))))
    t_cv, t_mm = timed(cv, x), timed(mm, x)
    print(f'| {shape} | {t_cv:.4f} | {t_mm:.4f} | {t_cv / t_mm:.1f}x | {diff:.1e} |', flush=True)



if __name__ == '__main__':
  run_main(main)
