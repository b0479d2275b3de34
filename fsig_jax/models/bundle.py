"""ModelBundle: an architecture config plus the variables of G_ema, G and D.

The bundle is a pytree (the config is static), so it can be passed through
`jax.jit`. `nets` maps 'G_ema' (always), 'G' and 'D' (when the source had them)
to Flax variable dicts: generators {'params', 'buffers'} (buffers hold w_avg
and the constant noise), the discriminator {'params'}.
"""
import functools
from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp

from fsig_jax.errors import MissingNetworkError
from fsig_jax.models import progan
from fsig_jax.models.config import StyleGAN2Config
from fsig_jax.models.stylegan2 import Discriminator, Generator


@functools.partial(jax.jit, static_argnames=(
    'cfg', 'truncation', 'inject_index', 'noise_mode', 'return_features'))
def _generate(cfg, variables, zs, truncation, truncation_latent, inject_index,
              noise_mode, key, return_features):
  if isinstance(cfg, progan.ProGANConfig):
    return progan.ProGANGenerator(cfg).apply({'params': variables['params']}, zs[0],
                                             return_features=return_features)
  rngs = {'noise': key} if key is not None else {}
  return Generator(cfg).apply(
      variables, zs, truncation=truncation, truncation_latent=truncation_latent,
      inject_index=inject_index, noise_mode=noise_mode,
      return_features=return_features, rngs=rngs)


@functools.partial(jax.jit, static_argnames=('cfg', 'return_features'))
def _discriminate(cfg, variables, images, return_features):
  if isinstance(cfg, progan.ProGANConfig):
    return progan.ProGANDiscriminator(cfg).apply(variables, images,
                                                 return_features=return_features)
  return Discriminator(cfg).apply(variables, images, return_features=return_features)


@flax.struct.dataclass
class ModelBundle:
  """A generator/discriminator pair (StyleGAN2 or ProGAN) and where it came from."""
  config: StyleGAN2Config = flax.struct.field(pytree_node=False)
  nets: dict
  source: str = flax.struct.field(pytree_node=False, default='')

  @property
  def has_discriminator(self) -> bool:
    return 'D' in self.nets

  def require(self, name: str) -> dict:
    """The variables of net `name`, or a clear error naming the checkpoint."""
    if name not in self.nets:
      hint = (' rosinality convert_weight.py writes D only when run with --disc;'
              ' an ada-pytorch pickle always has D.') if name == 'D' else ''
      raise MissingNetworkError(
          f'{self.source or "this model"} has no {name} network (it has '
          f'{sorted(self.nets)}); this use needs it.{hint}')
    return self.nets[name]

  @property
  def w_avg(self) -> jax.Array:
    return self.nets['G_ema']['buffers']['w_avg']

  def sample_z(self, key: jax.Array, n: int) -> jax.Array:
    return jax.random.normal(key, (n, self.config.z_dim))

  def generate(self, z, z2=None, *, inject_index: Optional[int] = None,
               truncation: float = 1.0, truncation_latent=None,
               noise_mode: str = 'const', key=None, net: str = 'G_ema',
               return_features: bool = False):
    """NHWC images in about [-1, 1] (unclipped) from latents z (N, z_dim).

    z2 with inject_index mixes styles; truncation lerps towards
    `truncation_latent` (default w_avg); noise_mode 'random' needs `key`.
    """
    if noise_mode == 'random' and key is None:
      raise ValueError("noise_mode='random' needs an explicit PRNG key (key=...)")
    if isinstance(self.config, progan.ProGANConfig) and (
        z2 is not None or truncation != 1.0 or truncation_latent is not None):
      raise ValueError('a ProGAN has no style mixing or truncation (z2, truncation); '
                       'pass latents z only')
    zs = [jnp.asarray(z)] if z2 is None else [jnp.asarray(z), jnp.asarray(z2)]
    for zi in zs:
      if zi.ndim != 2 or zi.shape[1] != self.config.z_dim:
        raise ValueError(f'z must have shape (N, {self.config.z_dim}), got {zi.shape}')
    return _generate(self.config, self.require(net), zs, float(truncation),
                     truncation_latent, inject_index, noise_mode, key, return_features)

  def discriminate(self, images, return_features: bool = False):
    """Logits (N, 1) for NHWC images in [-1, 1]."""
    return _discriminate(self.config, self.require('D'), jnp.asarray(images),
                         return_features)


def init_bundle(cfg: StyleGAN2Config, key: jax.Array, source: str = 'random-init') -> ModelBundle:
  """A freshly initialised G (G_ema = G) and D, e.g. for training from scratch."""
  if isinstance(cfg, progan.ProGANConfig):
    nets = progan.init_progan(cfg, key)
    return ModelBundle(config=cfg, nets={'G_ema': nets['G'], 'G': nets['G'], 'D': nets['D']},
                       source=source)
  kg, kd = jax.random.split(key)
  g = Generator(cfg).init(kg, jnp.zeros((1, cfg.z_dim)))
  img = jnp.zeros((1, cfg.resolution, cfg.resolution, cfg.img_channels))
  d = Discriminator(cfg).init(kd, img)
  g = {'params': g['params'], 'buffers': g['buffers']}
  return ModelBundle(config=cfg, nets={'G_ema': g, 'G': g, 'D': {'params': d['params']}},
                     source=source)
