"""The networks of one architecture as plain functions of parameter trees.

`Models(cfg)` wraps the Flax modules so that trainers, methods and losses can
run a source generator, an adapted one or a discriminator on whatever inputs
they need, without knowing the architecture: `Models(StyleGAN2Config)` and
`Models(ProGANConfig)` (a `ProGANModels`) have the same interface.
"""
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

  def __new__(cls, cfg=None):
    if cls is Models and isinstance(cfg, ProGANConfig):
      return super().__new__(ProGANModels)
    return super().__new__(cls)

  architecture = 'stylegan2'  # matched against Method.architectures
  has_styles = True  # per-layer styles: style mixing and path length apply

  def __init__(self, cfg: StyleGAN2Config):
    self.cfg = cfg
    self.G = Generator(cfg)
    self.D = Discriminator(cfg)

  def map(self, g_params, buffers, z):
    """z (N, z_dim) -> w (N, w_dim)."""
    return self.G.apply({'params': g_params, 'buffers': buffers}, z, method=Generator.map)

  def synth(self, g_params, buffers, ws, key, return_features: bool = False):
    """ws (N, num_ws, w_dim) -> images (and features) with random noise from `key`."""
    return self.G.apply({'params': g_params, 'buffers': buffers}, ws, noise_mode='random',
                        return_features=return_features, rngs={'noise': key},
                        method=Generator.synthesize)

  def disc(self, d_params, img, return_features: bool = True):
    """Images -> (logits (N, 1), features) when return_features, else logits."""
    return self.D.apply({'params': d_params}, img, return_features=return_features)

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

  def __init__(self, cfg: ProGANConfig):  # pylint: disable=super-init-not-called
    self.cfg = cfg
    self.G = ProGANGenerator(cfg)
    self.D = ProGANDiscriminator(cfg)

  def map(self, g_params, buffers, z):
    return z

  def synth(self, g_params, buffers, ws, key, return_features: bool = False):
    return self.G.apply({'params': g_params}, ws[:, 0], return_features=return_features)

  def disc(self, d_params, img, return_features: bool = True):
    return self.D.apply({'params': d_params}, img, return_features=return_features)

  def mix(self, w1, w2, key, prob: float):
    return self.broadcast(w1)
