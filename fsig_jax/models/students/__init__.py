"""Student networks of GPD (few-shot image-to-image translation).

`CONFIGS[arch]` is the config class of each student; `network(cfg)` builds the
flax module, `init_student` / `apply_student` are the pure-function interface
the trainer uses (params are the 'params' collection only: the students have
no other state).

`CONFIGS` also holds KDIT's StarGAN v2 student (`stargan_v2.StarGANv2Config`),
so its bundles load, but it is four networks (G, mapping, style encoder, D)
taking styles and domain labels, not a single-module translator: `network`,
`init_student` and `apply_student` refuse it; use `stargan_v2.networks` and
`stargan_v2.init_stargan`. Likewise KDIT part 2's conditional SPADE student
(`spade_generator.SPADEStudentConfig`, arch 'spade_student'): a generator
G(z, c, f) from noise, condition and teacher feature plus a conditional
discriminator; use `spade_generator.SPADEStudent`, `CondDiscriminator` and
`init_spade_student`. `TRANSLATORS` lists the archs they accept.
"""
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.models.students.config import Pix2PixConfig, UNetMSPADEConfig
from fsig_jax.models.students.pix2pix import Pix2PixUNet
from fsig_jax.models.students.spade_generator import SPADEStudentConfig
from fsig_jax.models.students.stargan_v2 import StarGANv2Config
from fsig_jax.models.students.unet_mspade import UNetMSPADE

CONFIGS = {'unet_mspade': UNetMSPADEConfig, 'pix2pix': Pix2PixConfig,
           'stargan_v2': StarGANv2Config, 'spade_student': SPADEStudentConfig}
_NETWORKS = {'unet_mspade': UNetMSPADE, 'pix2pix': Pix2PixUNet}
TRANSLATORS = tuple(sorted(_NETWORKS))


def network(cfg) -> nn.Module:
  """The flax module of a student config."""
  arch = getattr(cfg, 'arch', None)
  if isinstance(cfg, StarGANv2Config):
    raise ValueError('StarGAN v2 is four networks (G, mapping, style encoder, D), not a '
                     'single-module translator: use fsig_jax.models.students.stargan_v2.'
                     'networks / init_stargan')
  if isinstance(cfg, SPADEStudentConfig):
    raise ValueError('the SPADE student (spade_student) is a generator G(z, c, f) from noise, '
                     'condition and teacher feature plus a conditional D, not a single-module '
                     'image translator: use fsig_jax.models.students.spade_generator.'
                     'SPADEStudent / CondDiscriminator / init_spade_student')
  if arch not in _NETWORKS or not isinstance(cfg, CONFIGS[arch]):
    raise ValueError(f'not a student config: {cfg!r}; known archs: {list(TRANSLATORS)}')
  return _NETWORKS[arch](cfg)


def init_student(cfg, key: jax.Array) -> dict:
  """Fresh params (the 'params' collection) of the student `cfg`."""
  net = network(cfg)
  x = jnp.zeros((1, cfg.resolution, cfg.resolution, cfg.in_channels), jnp.float32)
  return net.init({'params': key}, x)['params']


def apply_student(cfg, params, x: jax.Array, key: Optional[jax.Array] = None) -> jax.Array:
  """Translates NHWC images x in [-1, 1]. With `key`, pix2pix dropout is active
  (training mode) and draws from `key`; without, it is off. UNetMSPADE has no
  randomness and ignores `key`."""
  net = network(cfg)
  if cfg.arch == 'pix2pix':
    if key is None:
      return net.apply({'params': params}, x, deterministic=True)
    return net.apply({'params': params}, x, deterministic=False, rngs={'dropout': key})
  return net.apply({'params': params}, x)


def param_count(params) -> int:
  """Number of scalars in a params pytree."""
  return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))
