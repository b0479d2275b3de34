"""ModelBundle: an architecture config plus the variables of G_ema, G and D.

The bundle is a pytree (the config is static), so it can be passed through
`jax.jit`. `nets` maps 'G_ema' (always), 'G' and 'D' (when the source had them)
to Flax variable dicts: generators {'params', 'buffers'} (buffers hold w_avg
and the constant noise), the discriminator {'params'}.
"""
import functools
from typing import Dict, Optional, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

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


@functools.partial(jax.jit, static_argnames=('cfg', 'truncation'))
def _map(cfg, variables, z, truncation):
  return Generator(cfg).apply(variables, z, truncation=truncation, method=Generator.ws)


@functools.partial(jax.jit, static_argnames=('cfg', 'noise_mode'))
def _synthesize(cfg, variables, ws, noise_mode, noise, key):
  rngs = {'noise': key} if key is not None else {}
  return Generator(cfg).apply(variables, ws, noise_mode=noise_mode, noise=noise, rngs=rngs,
                              method=Generator.synthesize)


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

  def seed_z(self, seeds: Sequence[int]) -> np.ndarray:
    """z (len(seeds), z_dim) float32 with stylegan2-ada-pytorch's seed semantics:
    row i is `np.random.RandomState(seeds[i]).randn(1, z_dim)` (ada generate.py
    and style_mixing.py), cast to float32 as ada's mapping does
    (networks.py MappingNetwork.forward `z.to(torch.float32)`)."""
    return np.concatenate([np.random.RandomState(int(s)).randn(1, self.config.z_dim)
                           for s in seeds]).astype(np.float32)

  def require_styles(self, what: str):
    """A clear ValueError for a ProGAN, which has no per-layer styles w or noise inputs."""
    if isinstance(self.config, progan.ProGANConfig):
      raise ValueError(f'a ProGAN has no per-layer styles w, so {what} does not apply; '
                       'use a StyleGAN2 model')

  def map(self, z, *, truncation: float = 1.0, net: str = 'G_ema') -> jax.Array:
    """Per-layer styles ws (N, num_ws, w_dim) of latents z (N, z_dim), truncated
    towards w_avg by `truncation` (ada `G.mapping(z, c, truncation_psi)`)."""
    self.require_styles('mapping')
    z = jnp.asarray(z, jnp.float32)
    if z.ndim != 2 or z.shape[1] != self.config.z_dim:
      raise ValueError(f'z must have shape (N, {self.config.z_dim}), got {z.shape}')
    return _map(self.config, self.require(net), z, float(truncation))

  def noise_shapes(self, net: str = 'G_ema') -> Dict[str, tuple]:
    """{'b8.conv0': (8, 8), ...}: every synthesis layer's noise input and its shape,
    the keys `synthesize(noise=...)` accepts."""
    self.require_styles('noise inputs')
    blocks = self.require(net)['buffers']['synthesis']
    return {f'{b}.{c}': tuple(v['noise_const'].shape)
            for b, convs in blocks.items() for c, v in convs.items()}

  def synthesize(self, ws, *, noise_mode: str = 'const',
                 noise: Optional[Dict[str, jax.Array]] = None, key=None,
                 net: str = 'G_ema') -> jax.Array:
    """NHWC images (unclipped, about [-1, 1]) from styles ws (N, num_ws, w_dim)
    (ada `G.synthesis(ws, noise_mode)`). `noise` {'b8.conv0': (res, res) or
    (N, res, res)} replaces those layers' noise inputs (see `noise_shapes`)."""
    self.require_styles('synthesis from w')
    if noise_mode == 'random' and key is None:
      raise ValueError("noise_mode='random' needs an explicit PRNG key (key=...)")
    ws = jnp.asarray(ws, jnp.float32)
    want = (self.config.num_ws, self.config.w_dim)
    if ws.ndim != 3 or ws.shape[1:] != want:
      raise ValueError(f'ws must have shape (N, {want[0]}, {want[1]}), got {ws.shape}')
    noise = None if noise is None else {k: jnp.asarray(v, jnp.float32) for k, v in noise.items()}
    return _synthesize(self.config, self.require(net), ws, noise_mode, noise, key)

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
  # Jitted: one compiled program per network instead of the forward pass op by op
  # (64 px rosinality widths: 5.8 s and 0.7 GB of process memory instead of 24 s and
  # 1.35 GB). XLA may fold a constant division into a multiplication, so a weight
  # can differ from the op-by-op value in its last bit.
  g = jax.jit(Generator(cfg).init)(kg, jnp.zeros((1, cfg.z_dim)))
  img = jnp.zeros((1, cfg.resolution, cfg.resolution, cfg.img_channels))
  d = jax.jit(Discriminator(cfg).init)(kd, img)
  g = {'params': g['params'], 'buffers': g['buffers']}
  return ModelBundle(config=cfg, nets={'G_ema': g, 'G': g, 'D': {'params': d['params']}},
                     source=source)
