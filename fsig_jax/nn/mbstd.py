"""Minibatch standard deviation (Karras et al. 2018, Sec. 3; StyleGAN2 D epilogue)."""
import jax
import jax.numpy as jnp

MBSTD_EPS = 1e-8  # both official codebases


def minibatch_stddev(x: jax.Array, group_size: int = 4,
                     num_features: int = 1) -> jax.Array:
  """Appends `num_features` channels of per-group feature std to NHWC `x`.

  Grouping matches ada-pytorch `MinibatchStdLayer` and rosinality: sample i
  belongs to group slot i % (N / G), i.e. reshape(G, -1, ...). N must be
  divisible by min(group_size, N).
  """
  n, h, w, c = x.shape
  g = min(group_size, n) if group_size else n
  if n % g:
    raise ValueError(f'batch size {n} is not divisible by the minibatch-stddev '
                     f'group size {g}; use a batch that is a multiple of {g}')
  f = num_features
  y = x.reshape(g, n // g, h, w, f, c // f)
  y = y - jnp.mean(y, axis=0)
  y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + MBSTD_EPS)  # (M, H, W, F, c)
  y = jnp.mean(y, axis=(1, 2, 4))  # (M, F)
  y = jnp.tile(y, (g, 1))[:, None, None, :]  # (N, 1, 1, F)
  y = jnp.broadcast_to(y, (n, h, w, f)).astype(x.dtype)
  return jnp.concatenate([x, y], axis=-1)
