"""What the engine hands to method plug-ins: model calls and per-step context.

`Models` wraps the Flax modules as plain functions of parameter trees, so a
method can run the source generator, the adapted one or the discriminator on
whatever inputs it needs. `StepContext` carries the traced values of one step;
it is an ordinary Python object that exists only while the step is traced.
"""
import dataclasses
from typing import Any, Dict, List, Optional

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


@dataclasses.dataclass
class InitContext:
  """Inputs to `Method.init`: the starting model, target images and a key."""
  bundle: Any
  images: Optional[Any]
  key: jax.Array
  hp: Any
  models: Models


@dataclasses.dataclass
class StepContext:
  """Traced values of one step, as loss terms see them.

  In G terms `g` is the G side being differentiated and `d` is fixed; in D
  terms the reverse. Fields a phase does not compute are None.
  """
  phase: str                        # 'D' (main D loss), 'R1' (D regulariser) or 'G'
  step: jax.Array
  key: jax.Array                    # a key reserved for the method's own sampling
  hp: Any
  models: Models
  g: Dict[str, Any]                 # {'net': G params, **method extras}
  d: Dict[str, Any]                 # {'net': D params, **method extras}
  g_buffers: Dict[str, Any]
  source_g: Dict[str, Any]          # frozen G params at the start of adaptation
  real: Optional[jax.Array] = None
  fake: Optional[jax.Array] = None
  zs: Optional[List[jax.Array]] = None
  ws: Optional[jax.Array] = None
  noise_key: Optional[jax.Array] = None  # the key the fake batch's noise used
  g_feats: Optional[Dict[str, jax.Array]] = None
  real_logits: Optional[jax.Array] = None
  fake_logits: Optional[jax.Array] = None
  d_feats_real: Optional[Dict[str, jax.Array]] = None
  d_feats_fake: Optional[Dict[str, jax.Array]] = None
