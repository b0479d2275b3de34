"""Progressive GAN (Karras et al., ICLR 2018) generator and discriminator in Flax.

RICK's second architecture (Zhao et al. CVPR 2023, Sec. 5: ProGAN, e.g.
LSUN-Church -> Sailboat). The networks follow the official TF code
(tkarras/progressive_growing_of_gans, networks.py `G_paper` / `D_paper`,
structure 'linear'):

G: z -> pixel norm -> dense to 4x4 (gain sqrt(2)/4) -> lrelu -> pixel norm ->
   conv3x3 -> lrelu -> pixel norm; per higher resolution: nearest 2x upsampling,
   two (conv3x3, lrelu, pixel norm); ToRGB: 1x1 conv, gain 1, linear.
D: FromRGB 1x1 conv + lrelu; per resolution above 4: two conv3x3 + lrelu
   (widths nf(res-1), nf(res-2)), 2x2 average pooling; at 4x4: minibatch
   stddev (group 4, 1 feature), conv3x3, dense to nf(0), lrelu, dense to 1.

Equalized learning rate as in ProGAN (Sec. 4.1, `get_weight(use_wscale=True)`):
weights ~ N(0, 1) scaled at run time by gain / sqrt(fan_in), gain sqrt(2)
unless noted; leaky ReLU slope 0.2; biases unscaled. (StyleGAN2 instead
multiplies activations by sqrt(2), a different parameterisation.)

Growing: `resolution` (static) selects how far the network is grown and
`alpha` in [0, 1] fades the newest block in: the output is
alpha * new + (1 - alpha) * upsampled(previous ToRGB) in G, and the mirror image
in D (structure 'linear' with lod = log2(R) - log2(res) + 1 - alpha). Fully
grown: `resolution=None`, alpha ignored. Every block's ToRGB / FromRGB
exists from initialisation (`init_params`), as in the official networks.

Parameter names mirror our StyleGAN2 ones so that filter-level methods (RICK)
read both: G `synthesis/b4/{dense,conv1,torgb}`, `synthesis/b{res}/{conv0,conv1,
torgb}`; D `b{res}/{fromrgb,conv0,conv1}`, `b4/{fromrgb,conv,fc,out}`.
"""
import dataclasses
import functools
import math
from typing import Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.models.config import dataclass_from_dict
from fsig_jax.nn import conv
from fsig_jax.nn.mbstd import minibatch_stddev

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2
PN_EPS = 1e-8


def progan_channels(resolution: int, fmap_base: int = 8192, fmap_max: int = 512
                    ) -> Tuple[int, ...]:
  """Widths of the 4x4 .. RxR blocks: nf(log2(res) - 1), nf(s) = min(fmap_base / 2^s, fmap_max)."""
  res = [4 * 2 ** i for i in range(int(math.log2(resolution)) - 1)]
  return tuple(min(int(fmap_base / 2 ** (int(math.log2(r)) - 1)), fmap_max) for r in res)


@dataclasses.dataclass(frozen=True)
class ProGANConfig:
  """A ProGAN architecture.

  Attributes:
    resolution: output size, a power of two >= 8.
    channels: widths of the 4x4, 8x8, ..., RxR blocks (G block res and D
      FromRGB/first conv at res both use channels[res]; D's second conv at res
      uses channels[res / 2]).
    z_dim: latent size (official: 512 = nf(1)).
    d_hidden: width of D's last hidden dense layer (official nf(0)).
    mbstd_group: minibatch-stddev group size (official 4).
  """
  resolution: int
  channels: Tuple[int, ...]
  z_dim: int = 512
  d_hidden: int = 512
  mbstd_group: int = 4

  arch = 'progan'  # the checkpoint metadata's architecture tag
  num_ws = 1  # the engine's latent interface: one "style" per image, no mixing
  w_dim = property(lambda self: self.z_dim)
  img_channels = 3

  @classmethod
  def from_dict(cls, d: dict) -> 'ProGANConfig':
    return dataclass_from_dict(cls, d)

  def __post_init__(self):
    r = self.resolution
    if r < 8 or r & (r - 1):
      raise ValueError(f'ProGAN resolution must be a power of two >= 8, got {r}')
    need = int(math.log2(r)) - 1
    if len(self.channels) != need:
      raise ValueError(f'channels must give {need} widths (4..{r} px), got {len(self.channels)}')

  @property
  def resolutions(self) -> Tuple[int, ...]:
    return tuple(4 * 2 ** i for i in range(len(self.channels)))

  def width(self, res: int) -> int:
    return self.channels[self.resolutions.index(res)]


def pixel_norm(x: jax.Array, axis: int = -1) -> jax.Array:
  """ProGAN Sec. 4.2: x / sqrt(mean(x^2 over channels) + 1e-8)."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + PN_EPS)


def lrelu(x: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x, LRELU_SLOPE)


class WSConv(nn.Module):
  """Conv with ProGAN's runtime weight scaling gain / sqrt(fan_in) and a bias."""
  features: int
  kernel_size: int = 3
  gain: float = SQRT2

  @nn.compact
  def __call__(self, x):
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', nn.initializers.normal(1.0), (k, k, cin, self.features))
    w = kernel * (self.gain / math.sqrt(k * k * cin))
    y = conv.conv2d(x, w.astype(x.dtype), padding=k // 2)
    return y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(x.dtype)


class WSDense(nn.Module):
  """Dense with ProGAN's runtime weight scaling gain / sqrt(fan_in) and a bias."""
  features: int
  gain: float = SQRT2

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.normal(1.0), (x.shape[-1], self.features))
    y = x @ (kernel * (self.gain / math.sqrt(x.shape[-1]))).astype(x.dtype)
    return y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(x.dtype)


def upscale2d(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x (official `upscale2d`)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def downscale2d(x: jax.Array) -> jax.Array:
  """2x2 average pooling (official `downscale2d`)."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _check_stage(cfg: ProGANConfig, resolution: Optional[int]) -> int:
  res = cfg.resolution if resolution is None else resolution
  if res not in cfg.resolutions:
    raise ValueError(f'resolution must be one of {cfg.resolutions} (grown so far), got {res}')
  return res


class _GBlock(nn.Module):
  """One G resolution: (dense to 4x4 | upsample + conv0), conv1, and its ToRGB."""
  width: int
  first: bool = False

  def setup(self):
    if self.first:
      self.dense = WSDense(self.width * 16, gain=SQRT2 / 4)
    else:
      self.conv0 = WSConv(self.width)
    self.conv1 = WSConv(self.width)
    self.torgb = WSConv(3, kernel_size=1, gain=1.0)

  def __call__(self, x):
    if self.first:  # x: (N, z_dim) normalised latents
      x = self.dense(x)
      x = pixel_norm(lrelu(x.reshape(x.shape[0], 4, 4, self.width)))
    else:
      x = pixel_norm(lrelu(self.conv0(upscale2d(x))))
    return pixel_norm(lrelu(self.conv1(x)))

  def rgb(self, x):
    return self.torgb(x)


class Synthesis(nn.Module):
  """The G blocks b4 .. bR; grown to `resolution` with fade-in `alpha`."""
  cfg: ProGANConfig

  @nn.compact
  def __call__(self, z, resolution=None, alpha=1.0, return_features=False, all_rgb=False):
    res = _check_stage(self.cfg, resolution)
    x = pixel_norm(z)  # normalize_latents=True
    feats, prev_rgb, rgbs, blk = {}, None, [], None
    for r in self.cfg.resolutions:
      if r > res and not all_rgb:
        break
      if r == res and resolution is not None and r > 4:
        prev_rgb = blk.rgb(x)
      blk = _GBlock(self.cfg.width(r), first=(r == 4), name=f'b{r}')
      x = blk(x)
      feats[f'b{r}'] = x
      if all_rgb:
        rgbs.append(blk.rgb(x))
    if all_rgb:  # initialisation: every block and ToRGB
      return rgbs
    img = blk.rgb(x)
    if prev_rgb is not None:  # fade-in of the newest block
      img = alpha * img + (1 - alpha) * upscale2d(prev_rgb)
    return (img, feats) if return_features else img


class ProGANGenerator(nn.Module):
  """z (N, z_dim) -> images (N, res, res, 3) in roughly [-1, 1] (no output clamp)."""
  cfg: ProGANConfig

  @nn.compact
  def __call__(self, z, resolution: Optional[int] = None, alpha=1.0,
               return_features: bool = False, all_rgb: bool = False):
    return Synthesis(self.cfg, name='synthesis')(z, resolution, alpha, return_features, all_rgb)


class _DBlock(nn.Module):
  """One D resolution above 4x4: its FromRGB, conv0, conv1 and 2x downscaling."""
  width: int
  width_out: int

  def setup(self):
    self.fromrgb = WSConv(self.width, kernel_size=1)
    self.conv0 = WSConv(self.width)
    self.conv1 = WSConv(self.width_out)

  def __call__(self, x):
    return downscale2d(lrelu(self.conv1(lrelu(self.conv0(x)))))

  def rgb(self, img):
    return lrelu(self.fromrgb(img))


class _DEpilogue(nn.Module):
  """4x4: (FromRGB), minibatch stddev, conv, dense to d_hidden, dense to 1."""
  width: int
  hidden: int
  mbstd_group: int

  def setup(self):
    self.fromrgb = WSConv(self.width, kernel_size=1)
    self.conv = WSConv(self.width)
    self.fc = WSDense(self.hidden)
    self.out = WSDense(1, gain=1.0)

  def __call__(self, x):
    x = minibatch_stddev(x, self.mbstd_group, 1)
    x = lrelu(self.conv(x))
    x = lrelu(self.fc(x.reshape(x.shape[0], -1)))
    return self.out(x)

  def rgb(self, img):
    return lrelu(self.fromrgb(img))


class ProGANDiscriminator(nn.Module):
  """Images (N, res, res, 3) -> logits (N, 1) (WGAN critic scores)."""
  cfg: ProGANConfig

  @nn.compact
  def __call__(self, img, resolution: Optional[int] = None, alpha=1.0,
               return_features: bool = False, all_rgb: bool = False):
    cfg = self.cfg
    res = _check_stage(cfg, img.shape[1] if resolution is None else resolution)
    if img.shape[1] != res:
      raise ValueError(f'images are {img.shape[1]}px but the discriminator is at {res}px')
    blocks = {r: _DBlock(cfg.width(r), cfg.width(r // 2), name=f'b{r}')
              for r in cfg.resolutions[1:]}
    epi = _DEpilogue(cfg.width(4), cfg.d_hidden, cfg.mbstd_group, name='b4')
    if all_rgb:  # initialisation: every FromRGB
      for r in cfg.resolutions[1:]:
        blocks[r].rgb(downscale_to(img, r))
      epi.rgb(downscale_to(img, 4))
    rgb = lambda r, x: (blocks[r] if r > 4 else epi).rgb(x)  # noqa: E731
    feats = {}
    x = rgb(res, img)
    for r in reversed(cfg.resolutions[1:]):
      if r > res:
        continue
      x = blocks[r](x)
      if r == res and resolution is not None:  # fade-in of the newest block
        x = alpha * x + (1 - alpha) * rgb(r // 2, downscale2d(img))
      feats[f'b{r}'] = x
    logits = epi(x)
    feats['logits'] = logits
    return (logits, feats) if return_features else logits


def downscale_to(img: jax.Array, res: int) -> jax.Array:
  """Average-pools NHWC images down to res x res (the training data of a stage)."""
  while img.shape[1] > res:
    img = downscale2d(img)
  return img


def init_progan(cfg: ProGANConfig, key: jax.Array):
  """{'G': {'params', 'buffers'}, 'D': {'params'}} with every block, ToRGB and FromRGB.

  G's only buffer is `w_avg` (the engine tracks the mean latent for every
  architecture; ProGAN itself has no truncation).
  """
  kg, kd = jax.random.split(key)
  z = jnp.zeros((1, cfg.z_dim))
  img = jnp.zeros((1, cfg.resolution, cfg.resolution, 3))
  # Jitted, one program per network (as models.bundle.init_bundle).
  g = jax.jit(functools.partial(ProGANGenerator(cfg).init, all_rgb=True))(kg, z)
  d = jax.jit(functools.partial(ProGANDiscriminator(cfg).init, all_rgb=True))(kd, img)
  return {'G': {'params': g['params'], 'buffers': {'w_avg': jnp.zeros((cfg.z_dim,))}},
          'D': {'params': d['params']}}
