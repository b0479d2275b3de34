"""The conditional SPADE student of KDIT part 2 and its conditional PatchGAN.

KDIT ("Distilling GANs with Style-Mixed Triplets for X2I Translation with
Limited Data", ICLR 2022, Sec. 3.3) distils a conditional generator
G_S(z_s, f, c): from its own noise z_s, conditioned on c (a spatial map such as
a sketch, or a vector such as a label), with a teacher feature f summed into
its hidden state at the 8x8 stage. Its layout follows the official
NVlabs/SPADE models/networks/generator.py `SPADEGenerator` on its z path
(`use_vae`, the encoder itself off: z is an input):

  fc: Dense(z_dim -> bottom * bottom * width(bottom)), reshaped to NHWC;
  for r = bottom, 2 * bottom, ..., resolution: `block{r}`, a SPADEResnetBlock
    (official models/networks/architecture.py) from the incoming width to
    width(r) at size r, followed by nearest 2x upsampling (official
    `nn.Upsample(scale_factor=2)`) except after the last block;
  conv_img: lrelu 0.2 + conv3x3 -> 3 + tanh (official `conv_img` tail).

The block is `unet_mspade.SPADEResBlock`, the official `SPADEResnetBlock`:
fmiddle = min(fin, fout); dx = conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x, c)))),
c)); out = x + dx, or conv_s(norm_s(x, c)) + dx (learned 1x1 shortcut, no bias)
when fin != fout. Every block's SPADE layers (`fsig_jax.nn.spade.SPADE`) are
modulated by the condition c: a spatial c (N, H, W, cond_channels) of any size
is resized nearest to the block's size by SPADE (official); a vector c
(N, cond_channels) is broadcast to a spatially constant (N, r, r,
cond_channels) map of the block's size, so the vector condition enters through
the same SPADE layers as a spatially constant map (an extension: official SPADE
only takes label maps).

Widths: width(r) = min(nf * resolution // r, max_channels). With the defaults
(max_channels = 16 nf) this is exactly the official width at every size: at
256 px the official blocks are 16nf at 8 (head_0) and 16 (G_middle_*), then
8nf, 4nf, 2nf, nf at 32, 64, 128, 256; width(r) gives 16nf, 16nf, 8nf, 4nf,
2nf, nf at those sizes (and 16nf at 4). Block r maps the incoming width
(width(r / 2), or width(bottom) from fc at the bottom) to width(r), as the
official up_i blocks do (up_0: 16nf -> 8nf).

Teacher feature (KDIT): f (N, inject, inject, teacher_channels) goes through
`f_proj`, a 1x1 conv with bias, to the width of the hidden state entering the
block at inject_resolution (`config.inject_width`, = width(inject / 2), the
width coming out of the previous block; width(bottom) when inject is the
bottom), and is ADDED to that hidden state, i.e. after the upsampling that
reaches inject_resolution and before `block{inject}`. f_proj is a 1x1 conv
even when teacher_channels equals that width (never an identity), so the
teacher's scale is learnt; it exists only when teacher_channels > 0 (and is
then always created at init, even when initialising with f=None). f=None
(stage 2, no teacher) skips the sum.

Deviations / decisions:
* One block per resolution from bottom_resolution (default 4) up; official has
  its first block at crop / 32 (8 at 256 px) and two blocks at 16x16
  (G_middle_0/1, 'normal' num_upsampling_layers). At 256 px ours has
  7 blocks at 4 .. 256, the official 7 blocks at 8, 16, 16, 32 .. 256.
* No spectral norm (official norm_G 'spectralspadesyncbatch3x3'); SPADE's
  param-free norm is instance norm (see `fsig_jax.nn.spade`); SPADE hidden
  width `spade_hidden` (official 128).
* fc's output is reshaped to NHWC (N, b, b, C) (official views NCHW), so its
  kernel's column order differs from a torch checkpoint's.
* `CondDiscriminator`: SPADE's own D (discriminator.py
  `MultiscaleDiscriminator`, num_D = 2) is two NLayerDiscriminator PatchGANs
  on [image, label] at full and half resolution, with spectral instance norm
  and feature-matching outputs; we use ONE scale: `fsig_jax.nn.patchgan.
  PatchGAN(ndf, n_layers)` (instance norm, no spectral norm) on the image
  concatenated with the condition channels, logits only.

`return_features=True` returns (image, {r: output of block{r}}) for every r
in bottom, ..., resolution.
"""
import dataclasses
from typing import Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.models.config import dataclass_from_dict
from fsig_jax.models.students.config import _check_arch, _positive, _power_of_two
from fsig_jax.models.students.unet_mspade import SPADEResBlock, lrelu, upsample2x
from fsig_jax.nn import patchgan
from fsig_jax.nn.patchgan import PatchGAN

IMG_CHANNELS = 3
CONDS = ('spatial', 'vector')


@dataclasses.dataclass(frozen=True)
class SPADEStudentConfig:
  """Architecture of `SPADEStudent` (and the condition of `CondDiscriminator`).

  Attributes:
    resolution: output size, a power of two >= inject_resolution.
    z_dim: noise size (official SPADE --z_dim 256).
    cond: 'spatial' (c is an (N, H, W, cond_channels) map, any H, W) or
      'vector' (c is (N, cond_channels)).
    cond_channels: channels of the condition map, or length of the vector.
    nf: width at full resolution (official --ngf 64); doubles per halving.
    max_channels: cap on the widths (official 16 * nf = 1024), >= nf.
    spade_hidden: width of every SPADE's shared conv (official 128).
    bottom_resolution: size of fc's output, the first block's size; a power of
      two >= 4.
    inject_resolution: size at which the teacher feature is added, a power of
      two in [bottom_resolution, resolution] (KDIT: 8).
    teacher_channels: channels of the teacher feature f; 0 builds no f_proj
      (a student without teacher input).
  """
  resolution: int = 64
  z_dim: int = 256
  cond: str = 'spatial'
  cond_channels: int = 3
  nf: int = 64
  max_channels: int = 1024
  spade_hidden: int = 128
  bottom_resolution: int = 4
  inject_resolution: int = 8
  teacher_channels: int = 0
  arch: str = 'spade_student'

  def __post_init__(self):
    _check_arch(self, 'spade_student')
    if self.cond not in CONDS:
      raise ValueError(f'cond must be one of {CONDS}, got {self.cond!r}')
    if not _power_of_two(self.bottom_resolution) or self.bottom_resolution < 4:
      raise ValueError(f'bottom_resolution must be a power of two >= 4, got '
                       f'{self.bottom_resolution}')
    if (not _power_of_two(self.inject_resolution)
        or self.inject_resolution < self.bottom_resolution):
      raise ValueError(f'inject_resolution must be a power of two >= bottom_resolution '
                       f'({self.bottom_resolution}), got {self.inject_resolution}')
    if not _power_of_two(self.resolution) or self.resolution < self.inject_resolution:
      raise ValueError(f'resolution must be a power of two >= inject_resolution '
                       f'({self.inject_resolution}) and bottom_resolution, got {self.resolution}')
    _positive(self, 'z_dim', 'cond_channels', 'nf', 'max_channels', 'spade_hidden')
    if self.max_channels < self.nf:
      raise ValueError(f'max_channels ({self.max_channels}) must be >= nf ({self.nf})')
    if not isinstance(self.teacher_channels, int) or self.teacher_channels < 0:
      raise ValueError(f'teacher_channels must be >= 0 (0: no teacher input), got '
                       f'{self.teacher_channels}')

  @property
  def scales(self) -> Tuple[int, ...]:
    """Block sizes, coarsest first: bottom_resolution, 2 * bottom, ..., resolution."""
    out, r = [], self.bottom_resolution
    while r <= self.resolution:
      out.append(r)
      r *= 2
    return tuple(out)

  def width(self, res: int) -> int:
    """Output width of block{res}: min(nf * resolution // res, max_channels)."""
    return min(self.nf * (self.resolution // res), self.max_channels)

  @property
  def inject_width(self) -> int:
    """Width of the hidden state entering block{inject_resolution} (f_proj's output)."""
    r = self.inject_resolution
    return self.width(r if r == self.bottom_resolution else r // 2)

  @classmethod
  def from_dict(cls, d: dict) -> 'SPADEStudentConfig':
    return dataclass_from_dict(cls, d)


def _check_cond(cfg: SPADEStudentConfig, c: jax.Array, n: int, who: str):
  if cfg.cond == 'spatial':
    if c.ndim != 4 or c.shape[0] != n or c.shape[3] != cfg.cond_channels:
      raise ValueError(f'{who} (cond=spatial) expects conditions of shape (N={n}, H, W, '
                       f'{cfg.cond_channels}), got {c.shape}')
  elif c.shape != (n, cfg.cond_channels):
    raise ValueError(f'{who} (cond=vector) expects conditions of shape ({n}, '
                     f'{cfg.cond_channels}), got {c.shape}')


def cond_map(cfg: SPADEStudentConfig, c: jax.Array, size: int) -> jax.Array:
  """The condition as an (N, size, size, cond_channels) map: a spatial c resized
  (nearest, as `fsig_jax.nn.spade.SPADE` does), a vector c broadcast constant."""
  n = c.shape[0]
  if cfg.cond == 'vector':
    return jnp.broadcast_to(c[:, None, None, :], (n, size, size, c.shape[-1])).astype(c.dtype)
  if c.shape[1:3] != (size, size):
    c = jax.image.resize(c, (n, size, size, c.shape[3]), 'nearest')
  return c


class SPADEStudent(nn.Module):
  """G_S(z, c, f): (N, z_dim) noise, condition c, optional teacher feature f ->
  (N, R, R, 3) images in [-1, 1].

  c: (N, H, W, cond_channels) for cond='spatial', (N, cond_channels) for
  'vector'. f: None or (N, inject, inject, teacher_channels).
  `return_features=True` returns (image, {r: output of block{r}}).
  Submodules: fc, f_proj (teacher_channels > 0 only), block{r}, conv_img.
  """
  config: SPADEStudentConfig

  @nn.compact
  def __call__(self, z: jax.Array, c: jax.Array, f: Optional[jax.Array] = None,
               return_features: bool = False):
    cfg = self.config
    if z.ndim != 2 or z.shape[1] != cfg.z_dim:
      raise ValueError(f'SPADEStudent expects noise of shape (N, {cfg.z_dim}), got {z.shape}')
    n = z.shape[0]
    _check_cond(cfg, c, n, 'SPADEStudent')
    ri = cfg.inject_resolution
    if f is not None:
      if cfg.teacher_channels == 0:
        raise ValueError('SPADEStudent got a teacher feature f, but the config has '
                         'teacher_channels=0 (no f_proj): set teacher_channels')
      want = (n, ri, ri, cfg.teacher_channels)
      if f.shape != want:
        raise ValueError(f'SPADEStudent expects teacher features of shape {want}, got {f.shape}')
    f_proj = None
    if cfg.teacher_channels > 0:
      f_proj = nn.Conv(cfg.inject_width, (1, 1), name='f_proj')
      if f is None and self.is_initializing():  # create f_proj's params all the same
        f_proj(jnp.zeros((1, ri, ri, cfg.teacher_channels), z.dtype))

    b = cfg.bottom_resolution
    h = nn.Dense(b * b * cfg.width(b), name='fc')(z).reshape(n, b, b, cfg.width(b))
    feats = {}
    for r in cfg.scales:
      if r == ri and f is not None:
        h = h + f_proj(f)
      cr = cond_map(cfg, c, r) if cfg.cond == 'vector' else c  # SPADE resizes spatial c
      h = SPADEResBlock(cfg.width(r), cfg.spade_hidden, name=f'block{r}')(h, cr)
      feats[r] = h
      if r != cfg.resolution:
        h = upsample2x(h)
    img = jnp.tanh(nn.Conv(IMG_CHANNELS, (3, 3), padding='SAME', name='conv_img')(lrelu(h)))
    return (img, feats) if return_features else img


def _check_d(resolution: int, n_layers: int):
  """PatchGAN's output side is R / 2**n_layers - 2: it must be >= 1."""
  side = resolution // 2 ** n_layers - 2
  if side < 1:
    raise ValueError(f'a {n_layers}-layer PatchGAN has no output at {resolution} px (needs '
                     f'resolution >= {3 * 2 ** n_layers}): use fewer n_layers')


class CondDiscriminator(nn.Module):
  """D(x, c): (N, R, R, 3) images and the condition c -> (N, h, w, 1) patch logits.

  The condition enters as input channels: a spatial c is resized (nearest) to
  x's size, a vector c broadcast to a constant (N, R, R, cond_channels) map;
  it is concatenated after the image channels and the result goes through
  `PatchGAN(ndf, n_layers)` (submodule `patchgan`). SPADE's own D is a 2-scale
  PatchGAN on [image, label] (`MultiscaleDiscriminator`, num_D = 2, spectral
  instance norm); this is ONE scale, instance norm, no spectral norm, and
  n_layers is configurable (a deviation).
  """
  config: SPADEStudentConfig
  ndf: int = 64
  n_layers: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
    cfg = self.config
    r = cfg.resolution
    if x.ndim != 4 or x.shape[1:] != (r, r, IMG_CHANNELS):
      raise ValueError(f'CondDiscriminator expects (N, {r}, {r}, {IMG_CHANNELS}) images, '
                       f'got {x.shape}')
    _check_cond(cfg, c, x.shape[0], 'CondDiscriminator')
    _check_d(r, self.n_layers)
    h = jnp.concatenate([x, cond_map(cfg, c, r).astype(x.dtype)], axis=-1)
    return PatchGAN(self.ndf, self.n_layers, name='patchgan')(h)


def init_spade_student(cfg: SPADEStudentConfig, key: jax.Array, ndf: int = 64,
                       n_layers: int = 3) -> dict:
  """Fresh params ('params' collections) {'G', 'D'} of SPADEStudent(cfg) and
  CondDiscriminator(cfg, ndf, n_layers). G includes f_proj when teacher_channels > 0."""
  if not isinstance(cfg, SPADEStudentConfig):
    raise ValueError(f'not a SPADEStudentConfig: {cfg!r}')
  patchgan.layers(n_layers)  # validates n_layers >= 1
  _check_d(cfg.resolution, n_layers)
  r = cfg.resolution
  z = jnp.zeros((1, cfg.z_dim), jnp.float32)
  c = (jnp.zeros((1, r, r, cfg.cond_channels), jnp.float32) if cfg.cond == 'spatial'
       else jnp.zeros((1, cfg.cond_channels), jnp.float32))
  x = jnp.zeros((1, r, r, IMG_CHANNELS), jnp.float32)
  k_g, k_d = jax.random.split(key)
  return {
      'G': SPADEStudent(cfg).init({'params': k_g}, z, c)['params'],
      'D': CondDiscriminator(cfg, ndf, n_layers).init({'params': k_d}, x, c)['params'],
  }
