"""The networks of one architecture as plain functions of parameter trees.

`Models(cfg)` wraps the Flax modules so that trainers, methods and losses can
run a source generator, an adapted one or a discriminator on whatever inputs
they need, without knowing the architecture: `Models(StyleGAN2Config)` and
`Models(ProGANConfig)` (a `ProGANModels`) have the same interface.

Mixed precision: `Models(cfg, compute_dtype='bfloat16')` runs the networks in
bfloat16 (parameters and inputs cast on the way in) and returns float32
outputs, so losses, gradients (through the cast, to the float32 parameters)
and the optimiser state stay float32: the usual recipe for GPU/TPU (e.g.
flax's examples/imagenet `half_precision`). On CPU bfloat16 is emulated and slower.
"""
from typing import Optional

import jax
import jax.numpy as jnp

from fsig_jax.models.config import StyleGAN2Config
from fsig_jax.models.progan import ProGANConfig, ProGANDiscriminator, ProGANGenerator
from fsig_jax.models.stylegan2 import Discriminator, Generator


class Models:
  """G and D of one config as functions of (params, buffers, inputs, key).

  `Models(cfg)` gives the StyleGAN2 functions, or `ProGANModels` for a
  ProGANConfig: every method, loss and the engine talk to this interface only.
  """

  def __new__(cls, cfg=None, compute_dtype=None):
    if cls is Models and isinstance(cfg, ProGANConfig):
      return super().__new__(ProGANModels)
    return super().__new__(cls)

  architecture = 'stylegan2'  # matched against Method.architectures
  has_styles = True  # per-layer styles: style mixing and path length apply

  def __init__(self, cfg: StyleGAN2Config, compute_dtype: Optional[str] = None):
    self.cfg = cfg
    self.dtype = compute_dtype_of(compute_dtype)
    self.G = Generator(cfg)
    self.D = Discriminator(cfg)

  def _in(self, *trees):
    """Floating leaves to the compute dtype (a no-op in float32)."""
    return trees if self.dtype is None else cast(trees, self.dtype)

  def _out(self, tree):
    return tree if self.dtype is None else cast(tree, jnp.float32)

  def map(self, g_params, buffers, z):
    """z (N, z_dim) -> w (N, w_dim)."""
    g_params, buffers, z = self._in(g_params, buffers, z)
    return self._out(self.G.apply({'params': g_params, 'buffers': buffers}, z,
                                  method=Generator.map))

  def synth(self, g_params, buffers, ws, key, return_features: bool = False):
    """ws (N, num_ws, w_dim) -> images (and features) with random noise from `key`."""
    g_params, buffers, ws = self._in(g_params, buffers, ws)
    return self._out(self.G.apply({'params': g_params, 'buffers': buffers}, ws,
                                  noise_mode='random', return_features=return_features,
                                  rngs={'noise': key}, method=Generator.synthesize))

  def disc(self, d_params, img, return_features: bool = True):
    """Images -> (logits (N, 1), features) when return_features, else logits."""
    d_params, img = self._in(d_params, img)
    return self._out(self.D.apply({'params': d_params}, img, return_features=return_features))

  def broadcast(self, w):
    return jnp.repeat(w[:, None], self.cfg.num_ws, axis=1)

  def mix(self, w1, w2, key, prob: float):
    """Style mixing regularisation (StyleGAN Sec. 3.1; rosinality `mixing_noise`).

    With probability `prob` (one draw per batch), styles [0, cut) come from w1
    and the rest from w2, cut ~ U{1, ..., num_ws - 1}.
    """
    n = self.cfg.num_ws
    k1, k2 = jax.random.split(key)
    cut = jax.random.randint(k1, (), 1, n)
    cut = jnp.where(jax.random.uniform(k2) < prob, cut, n)
    sel = (jnp.arange(n) < cut)[None, :, None]
    return jnp.where(sel, w1[:, None], w2[:, None])


class ProGANModels(Models):
  """ProGAN behind the same interface: the "style" is the latent z itself
  (normalised inside G), one per image, so mixing is a no-op; there is no noise."""

  architecture = 'progan'
  has_styles = False  # path length is skipped; mixing is a no-op

  def __init__(self, cfg: ProGANConfig, compute_dtype: Optional[str] = None):  # pylint: disable=super-init-not-called
    self.cfg = cfg
    self.dtype = compute_dtype_of(compute_dtype)
    self.G = ProGANGenerator(cfg)
    self.D = ProGANDiscriminator(cfg)

  def map(self, g_params, buffers, z):
    return z

  def synth(self, g_params, buffers, ws, key, return_features: bool = False):
    g_params, ws = self._in(g_params, ws)
    return self._out(self.G.apply({'params': g_params}, ws[:, 0],
                                  return_features=return_features))

  def disc(self, d_params, img, return_features: bool = True):
    d_params, img = self._in(d_params, img)
    return self._out(self.D.apply({'params': d_params}, img, return_features=return_features))

  def mix(self, w1, w2, key, prob: float):
    return self.broadcast(w1)


COMPUTE_DTYPES = ('float32', 'bfloat16')


def compute_dtype_of(name: Optional[str]):
  """'float32' / None / '' -> None (no casting); 'bfloat16' -> jnp.bfloat16."""
  if not name or name == 'float32':
    return None
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'compute_dtype must be one of {COMPUTE_DTYPES}, got {name!r}')
  return jnp.dtype(name)


def cast(tree, dtype):
  """The floating leaves of `tree` as `dtype` (other leaves unchanged)."""
  return jax.tree.map(
      lambda a: a.astype(dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a,
      tree)
