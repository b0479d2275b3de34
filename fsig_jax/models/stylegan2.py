"""StyleGAN2 generator and resnet discriminator (Karras et al. 2020) in Flax.

One architecture serves both official codebases (rosinality/stylegan2-pytorch
and NVlabs/stylegan2-ada-pytorch), which compute the same function; parameter
names follow ada-pytorch's per-resolution blocks:

  G params:  mapping/fc{i}/{kernel,bias}
             synthesis/b4/{const, conv1/..., torgb/...}
             synthesis/b{res}/{conv0/..., conv1/..., torgb/...}
             (conv: affine/{kernel,bias}, kernel, noise_strength, bias)
  G buffers: w_avg, synthesis/b{res}/conv{j}/noise_const
  D params:  b{R}/fromrgb, b{res}/{conv0, conv1, skip}, b4/{conv, fc, out}

Images are NHWC in [-1, 1]. Every call can also return the intermediate
features of every layer (`return_features=True`), which adaptation losses
consume. Noise is 'const' (the stored buffers), 'random' (from the 'noise' rng
stream) or 'none', and any layer's noise can be overridden by a dict
{'b8.conv0': array} of shape (res, res) or (N, res, res).
"""
import math
from typing import Dict, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.models.config import StyleGAN2Config, resolutions
from fsig_jax.nn import upfirdn
from fsig_jax.nn.equalized import EqualConv2d, EqualDense, bias_act
from fsig_jax.nn.mbstd import minibatch_stddev
from fsig_jax.nn.modulated import modulated_conv2d

NOISE_MODES = ('const', 'random', 'none')
Features = Dict[str, jax.Array]


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Pixel norm of z (rosinality `PixelNorm`, ada-pytorch `normalize_2nd_moment`)."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


class MappingNetwork(nn.Module):
  """z -> w: pixel norm then n_mlp leaky-ReLU layers with lr multiplier."""
  cfg: StyleGAN2Config

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    cfg = self.cfg
    x = normalize_2nd_moment(z)
    hidden = cfg.mapping_hidden or cfg.w_dim
    for i in range(cfg.n_mlp):
      width = cfg.w_dim if i == cfg.n_mlp - 1 else hidden
      x = EqualDense(width, lr_mul=cfg.lr_mul, act='lrelu', name=f'fc{i}')(x)
    return x


class SynthesisLayer(nn.Module):
  """Modulated 3x3 conv, noise injection, bias and leaky ReLU."""
  features: int
  resolution: int
  up: int = 1
  conv_clamp: Optional[float] = None
  resample_taps: Sequence[float] = (1, 3, 3, 1)

  @nn.compact
  def __call__(self, x, w, noise_mode: str = 'const',
               noise: Optional[jax.Array] = None):
    styles = EqualDense(x.shape[-1], bias_init=1.0, name='affine')(w)
    kernel = self.param('kernel', nn.initializers.normal(1.0),
                        (3, 3, x.shape[-1], self.features))
    x = modulated_conv2d(x, kernel, styles, up=self.up,
                         resample_taps=self.resample_taps)
    strength = self.param('noise_strength', nn.initializers.zeros, ())
    res = self.resolution
    const = self.variable('buffers', 'noise_const', lambda: jax.random.normal(
        self.make_rng('params'), (res, res)))
    if noise is None:
      if noise_mode == 'const':
        noise = const.value
      elif noise_mode == 'random':
        noise = jax.random.normal(self.make_rng('noise'), (x.shape[0], res, res))
    if noise is not None:
      x = x + (strength * noise)[..., None].astype(x.dtype)
    b = self.param('bias', nn.initializers.zeros, (self.features,))
    return bias_act(x, b, 'lrelu', clamp=self.conv_clamp)


class ToRGB(nn.Module):
  """Modulated 1x1 conv without demodulation, plus bias (linear)."""
  img_channels: int = 3
  conv_clamp: Optional[float] = None

  @nn.compact
  def __call__(self, x, w):
    styles = EqualDense(x.shape[-1], bias_init=1.0, name='affine')(w)
    kernel = self.param('kernel', nn.initializers.normal(1.0),
                        (1, 1, x.shape[-1], self.img_channels))
    x = modulated_conv2d(x, kernel, styles, demodulate=False)
    b = self.param('bias', nn.initializers.zeros, (self.img_channels,))
    return bias_act(x, b, 'linear', clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
  """One resolution: (const | up-conv0), conv1, ToRGB added to upsampled skip."""
  cfg: StyleGAN2Config
  resolution: int

  @nn.compact
  def __call__(self, x, img, ws, noise_mode, noise, feats: Features):
    cfg, res = self.cfg, self.resolution
    width = cfg.g_width(res)
    layer = lambda name, up: SynthesisLayer(  # noqa: E731
        width, res, up=up, conv_clamp=cfg.g_conv_clamp,
        resample_taps=cfg.resample_taps, name=name)
    if res == 4:
      const = self.param('const', nn.initializers.normal(1.0), (4, 4, width))
      x = jnp.broadcast_to(const, (ws.shape[0], 4, 4, width))
      names = ['conv1']
    else:
      names = ['conv0', 'conv1']
    for i, name in enumerate(names):
      key = f'b{res}.{name}'
      x = layer(name, 2 if name == 'conv0' else 1)(
          x, ws[:, i], noise_mode, noise.get(key))
      feats[key] = x
    y = ToRGB(cfg.img_channels, cfg.g_conv_clamp, name='torgb')(x, ws[:, len(names)])
    if img is not None:
      img = upfirdn.upsample2d(img, upfirdn.setup_filter(cfg.resample_taps))
      y = img + y
    feats[f'b{res}.img'] = y
    return x, y


class SynthesisNetwork(nn.Module):
  """ws (N, num_ws, w_dim) -> image; block b{res} reads ws[2L-5 : 2L-2]."""
  cfg: StyleGAN2Config

  @nn.compact
  def __call__(self, ws, noise_mode: str = 'const',
               noise: Optional[Dict[str, jax.Array]] = None):
    if noise_mode not in NOISE_MODES:
      raise ValueError(f'noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}')
    feats: Features = {}
    x = img = None
    idx = 0
    for res in resolutions(self.cfg.resolution):
      n_conv = 1 if res == 4 else 2
      x, img = SynthesisBlock(self.cfg, res, name=f'b{res}')(
          x, img, ws[:, idx:idx + n_conv + 1], noise_mode, noise or {}, feats)
      idx += n_conv
    return img, feats


def _as_list(z) -> list:
  return list(z) if isinstance(z, (list, tuple)) else [z]


def _is_one(v) -> bool:
  return isinstance(v, (int, float)) and v == 1


class Generator(nn.Module):
  """StyleGAN2 generator: mapping, truncation, style mixing, synthesis.

  `ws(z, ...)` gives per-layer styles, `synthesize(ws, ...)` the image, and
  `__call__` both. `z` is (N, z_dim) or a list of two for style mixing: styles
  [0, inject_index) come from the first, the rest from the second (rosinality
  `Generator.forward`). Truncation lerps each w towards `truncation_latent`
  (default: the tracked `w_avg` buffer).
  """
  cfg: StyleGAN2Config

  def setup(self):
    self.mapping = MappingNetwork(self.cfg)
    self.synthesis = SynthesisNetwork(self.cfg)
    self.w_avg = self.variable('buffers', 'w_avg', jnp.zeros, (self.cfg.w_dim,))

  def map(self, z: jax.Array) -> jax.Array:
    """z (N, z_dim) -> w (N, w_dim), untruncated."""
    return self.mapping(z)

  def ws(self, z, truncation: Union[float, jax.Array] = 1.0,
         truncation_latent: Optional[jax.Array] = None,
         inject_index: Optional[int] = None, input_is_w: bool = False):
    """Per-layer styles (N, num_ws, w_dim) from one or two latents."""
    n = self.cfg.num_ws
    latents = _as_list(z)
    if len(latents) > 2:
      raise ValueError(f'style mixing takes at most 2 latents, got {len(latents)}')
    w = latents if input_is_w else [self.mapping(l) for l in latents]
    if not _is_one(truncation):
      center = self.w_avg.value if truncation_latent is None else truncation_latent
      w = [center + truncation * (wi - center) for wi in w]
    if len(w) == 1:
      return jnp.repeat(w[0][:, None], n, axis=1)
    k = n // 2 if inject_index is None else inject_index
    if not 0 <= k <= n:
      raise ValueError(f'inject_index must be in [0, {n}], got {k}')
    return jnp.concatenate([jnp.repeat(w[0][:, None], k, axis=1),
                            jnp.repeat(w[1][:, None], n - k, axis=1)], axis=1)

  def synthesize(self, ws, noise_mode: str = 'const', noise=None,
                 return_features: bool = False):
    img, feats = self.synthesis(ws, noise_mode, noise)
    return (img, feats) if return_features else img

  def __call__(self, z, truncation=1.0, truncation_latent=None,
               inject_index=None, noise_mode: str = 'const', noise=None,
               return_features: bool = False, input_is_w: bool = False):
    ws = self.ws(z, truncation, truncation_latent, inject_index, input_is_w)
    return self.synthesize(ws, noise_mode, noise, return_features)


class DiscriminatorBlock(nn.Module):
  """Resnet D block: [fromrgb], conv0, conv1 (down), 1x1 skip (down); sum * sqrt(.5).

  Records in `feats` the activations rosinality's ResBlock has: 'b{res}.fromrgb'
  (first block only), 'b{res}.conv0' (= rosinality `conv1`, 3x3) and
  'b{res}.conv1' (= rosinality `conv2`, 3x3 down). Our conv1 folds the resnet
  sum's sqrt(.5) into its output (ada-pytorch `gain`, which scales the clamp
  too, so the output is exactly sqrt(.5) times the unscaled one); the recorded
  'b{res}.conv1' divides it back out, so it is rosinality's `conv2` output.
  """
  cfg: StyleGAN2Config
  resolution: int
  first: bool

  @nn.compact
  def __call__(self, x, feats: Optional[Features] = None):
    cfg, res = self.cfg, self.resolution
    feats = {} if feats is None else feats
    tmp, out = cfg.d_width(res), cfg.d_width(res // 2)
    clamp, taps = cfg.d_conv_clamp, cfg.resample_taps
    if self.first:
      x = EqualConv2d(tmp, 1, act='lrelu', conv_clamp=clamp, name='fromrgb')(x)
      feats[f'b{res}.fromrgb'] = x
    g = math.sqrt(0.5)
    y = EqualConv2d(out, 1, down=2, use_bias=False, resample_taps=taps,
                    name='skip')(x, gain=g)
    x = EqualConv2d(tmp, 3, act='lrelu', conv_clamp=clamp, name='conv0')(x)
    feats[f'b{res}.conv0'] = x
    x = EqualConv2d(out, 3, down=2, act='lrelu', conv_clamp=clamp,
                    resample_taps=taps, name='conv1')(x, gain=g)
    feats[f'b{res}.conv1'] = x / g
    return y + x


class DiscriminatorEpilogue(nn.Module):
  """4x4 head: minibatch stddev, 3x3 conv, fc, linear output."""
  cfg: StyleGAN2Config

  @nn.compact
  def __call__(self, x, feats: Features):
    cfg, c = self.cfg, self.cfg.d_width(4)
    x = minibatch_stddev(x, cfg.mbstd_group, cfg.mbstd_features)
    x = EqualConv2d(c, 3, act='lrelu', conv_clamp=cfg.d_conv_clamp, name='conv')(x)
    feats['b4.conv'] = x
    # Flatten in NCHW order so fc weights match the official layout.
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
    x = EqualDense(c, act='lrelu', name='fc')(x)
    feats['b4.fc'] = x
    return EqualDense(1, name='out')(x)


class Discriminator(nn.Module):
  """StyleGAN2 resnet discriminator; returns logits (N, 1).

  With `return_features`, also {key: activation}: per block 'b{res}' (its
  output), 'b{res}.conv0', 'b{res}.conv1' and, for the first block,
  'b{res}.fromrgb' (`DiscriminatorBlock`); then 'b4.conv', 'b4.fc' and
  'logits'. The fromrgb, conv0/conv1 and 'b4.conv' activations are, in this
  order, rosinality's fromRGB, ResBlock conv1/conv2 and final conv outputs.
  """
  cfg: StyleGAN2Config

  @nn.compact
  def __call__(self, img: jax.Array, return_features: bool = False):
    cfg = self.cfg
    if img.shape[1:] != (cfg.resolution, cfg.resolution, cfg.img_channels):
      raise ValueError(f'discriminator expects NHWC images of shape (N, {cfg.resolution}, '
                       f'{cfg.resolution}, {cfg.img_channels}), got {img.shape}')
    feats: Features = {}
    x = img
    for res in reversed(resolutions(cfg.resolution)[1:]):
      x = DiscriminatorBlock(cfg, res, res == cfg.resolution, name=f'b{res}')(x, feats)
      feats[f'b{res}'] = x
    logits = DiscriminatorEpilogue(cfg, name='b4')(x, feats)
    feats['logits'] = logits
    return (logits, feats) if return_features else logits
