"""Small pytree helpers shared by trainers and methods."""
import hashlib

import jax
import numpy as np


def ema(average, new, beta):
  """Exponential moving average of a pytree: new + (average - new) * beta.

  rosinality/stylegan2-pytorch train.py `accumulate` (par1 * decay + par2 *
  (1 - decay), written in this form); every EMA in fsig-jax (G_ema, RICK's
  D_ema, AdAM's probing EMA, ProGAN's G smoothing) is this one function.
  """
  return jax.tree.map(lambda e, p: p + (e - p) * beta, average, new)


def digest(tree) -> str:
  """SHA-256 (16 hex) of a pytree's structure and every leaf's path, dtype, shape and bytes.

  Equal for equal values (on any device or host); any changed bit, shape or
  leaf name changes it. PRNG key arrays are hashed through their key data.
  """
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    dtype = getattr(leaf, 'dtype', None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    x = np.ascontiguousarray(jax.device_get(leaf))
    h.update(f'{jax.tree_util.keystr(path)}\0{x.dtype.str}\0{x.shape}\n'.encode())
    h.update(x.tobytes())
  return h.hexdigest()[:16]
