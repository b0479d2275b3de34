"""The StarGAN v2 student of KDIT, faithful to clovaai/stargan-v2 core/model.py.

KDIT ("Distilling GANs with Style-Mixed Triplets for X2I Translation with
Limited Data", ICLR 2022) distils into a StarGAN v2 (Choi et al., CVPR 2020):
a generator G(x, s), a mapping network F(z, y) -> s, a style encoder
E(x, y) -> s and a multi-task discriminator D(x, y). The four networks here
follow the official `Generator`, `MappingNetwork`, `StyleEncoder` and
`Discriminator` layer for layer (parameter names follow the official
attributes: conv1, conv2, norm1, norm2, conv1x1, from_rgb, ...):

`ResBlk` (official `ResBlk`): residual = conv2(lrelu(IN2(pool(conv1(lrelu(
  IN1(x))))))) with the affine instance norms only when `normalize`, 2x2 average
  pooling only when `downsample`; shortcut = pool(conv1x1(x)), the 1x1 conv
  (no bias) only when the widths differ; out = (shortcut + residual) / sqrt(2).
`AdainResBlk` (official, w_hpf = 0): residual = conv2(lrelu(AdaIN2(conv1(up(
  lrelu(AdaIN1(x, s)))), s))); shortcut = conv1x1(up(x)); out = (shortcut +
  residual) / sqrt(2); up is nearest 2x, only when `upsample`.
`Generator`: from_rgb conv3x3 -> dim_in; encoder: repeat_num = log2(R) - 4
  ResBlk(normalize, downsample), widths min(2 * w, max_conv_dim), then two
  bottleneck ResBlk(normalize); decoder mirrors it with AdainResBlk (two
  bottleneck blocks, then the upsampling ones back to dim_in); to_rgb =
  InstanceNorm2d(affine) + lrelu 0.2 + conv1x1 -> 3. No tanh: the official
  output is unbounded.
`MappingNetwork`: shared Dense(latent_dim -> 512) + ReLU, 3 x (Dense 512 +
  ReLU); per domain an unshared head 3 x (Dense 512 + ReLU) + Dense(style_dim);
  the head is picked by the integer label y.
`StyleEncoder`: conv3x3 -> dim_in, repeat_num = log2(R) - 2 ResBlk(downsample)
  (no normalisation) down to 4x4, lrelu, conv 4x4 valid -> 1x1, lrelu; per
  domain a Dense(style_dim) head `unshared_{k}`.
`Discriminator`: the StyleEncoder's trunk, then one conv1x1 -> num_domains
  (`head`) whose output channel y is the logit: its per-domain "heads" are the
  output channels of that single conv (`copy_head` handles both layouts).

Deviations / decisions:
* No high-pass filter (w_hpf = 0): the official w_hpf > 0 path (CelebA-HQ)
  needs the pretrained FAN face-alignment network for its masks, which is not
  available offline. With w_hpf = 0 the official Generator has
  repeat_num = log2(R) - 4 downsampling blocks (w_hpf > 0 adds one), and the
  skip connections (`masks`, `cache`) are unused, as in official AFHQ training.
* At resolution 16 the generator has no up/down-sampling blocks: its encoder
  and decoder are the two bottleneck blocks at width dim_in (the official code
  raises NameError there, `dim_out` being unset).
* `mapping_hidden` makes the mapping width configurable (official 512), and
  `dim_in` overrides the official first width 2**14 // resolution (0 = official),
  so that tests and small students can be narrow.
* Init: the official solver re-initialises every Conv2d and Linear with
  kaiming_normal_(fan_in, relu) and zero biases (`utils.he_init`); we do the
  same (`he_normal`). Affine instance norms start at scale 1, bias 0 (torch).
* `return_features=True` also returns intermediate activations keyed by
  spatial size (see each module); y=None on the labelled networks returns
  every domain's output (an extension; official always selects).
"""
import dataclasses
import math
from typing import Optional, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.models.config import dataclass_from_dict
from fsig_jax.models.students.config import _check_arch, _positive, _power_of_two
from fsig_jax.nn.adain import AdaIN, he_normal
from fsig_jax.nn.norm import instance_norm

LRELU_SLOPE = 0.2
SQRT2 = math.sqrt(2.0)
IMG_CHANNELS = 3


@dataclasses.dataclass(frozen=True)
class StarGANv2Config:
  """Architecture of the four StarGAN v2 networks (official `build_model` args).

  Attributes:
    resolution: image size (official img_size), a power of two >= 16.
    num_domains: number of domains (heads of F, E and D), >= 1.
    style_dim: style code size (official 64).
    latent_dim: mapping-network input size (official 16).
    mapping_hidden: width of the mapping network (official 512).
    max_conv_dim: cap on the conv widths (official 512).
    dim_in: width after from_rgb; 0 means the official 2**14 // resolution.
  """
  resolution: int = 64
  num_domains: int = 2
  style_dim: int = 64
  latent_dim: int = 16
  mapping_hidden: int = 512
  max_conv_dim: int = 512
  dim_in: int = 0
  arch: str = 'stargan_v2'

  def __post_init__(self):
    _check_arch(self, 'stargan_v2')
    if not _power_of_two(self.resolution) or self.resolution < 16:
      raise ValueError(f'resolution must be a power of two >= 16, got {self.resolution}')
    _positive(self, 'num_domains', 'style_dim', 'latent_dim', 'mapping_hidden', 'max_conv_dim')
    if not isinstance(self.dim_in, int) or self.dim_in < 0:
      raise ValueError(f'dim_in must be >= 0 (0: official 2**14 // resolution), got {self.dim_in}')
    if self.width0 < 1:
      raise ValueError(f'2**14 // resolution is 0 at resolution {self.resolution}: set dim_in')

  @property
  def width0(self) -> int:
    """The resolved dim_in: the width after from_rgb."""
    return self.dim_in or 2 ** 14 // self.resolution

  @property
  def g_repeat_num(self) -> int:
    """Generator down/up-sampling blocks: log2(resolution) - 4 (w_hpf = 0)."""
    return self.resolution.bit_length() - 1 - 4

  @property
  def d_repeat_num(self) -> int:
    """StyleEncoder / Discriminator downsampling blocks: log2(resolution) - 2."""
    return self.resolution.bit_length() - 1 - 2

  def widths(self, n: int) -> Tuple[int, ...]:
    """width0 and the n widths after it, each min(2 * previous, max_conv_dim)."""
    out = [self.width0]
    for _ in range(n):
      out.append(min(out[-1] * 2, self.max_conv_dim))
    return tuple(out)

  @classmethod
  def from_dict(cls, d: dict) -> 'StarGANv2Config':
    return dataclass_from_dict(cls, d)


def lrelu(x: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x, LRELU_SLOPE)


def avg_pool2(x: jax.Array) -> jax.Array:
  """Official `F.avg_pool2d(x, 2)`."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def upsample2x(x: jax.Array) -> jax.Array:
  """Official `F.interpolate(x, scale_factor=2, mode='nearest')`."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _conv(features: int, k: int, name: Optional[str] = None, padding='SAME',
          use_bias: bool = True) -> nn.Conv:
  return nn.Conv(features, (k, k), padding=padding, use_bias=use_bias, kernel_init=he_normal,
                 name=name)


class InstanceNorm(nn.Module):
  """torch `nn.InstanceNorm2d(C, affine=True)`: instance_norm(x) * scale + bias."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (c,))
    bias = self.param('bias', nn.initializers.zeros, (c,))
    return instance_norm(x) * scale + bias


class ResBlk(nn.Module):
  """Official `ResBlk` (leaky ReLU 0.2); the input width is read off x."""
  dim_out: int
  normalize: bool = False
  downsample: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    dim_in = x.shape[-1]
    sc = x
    if dim_in != self.dim_out:
      sc = _conv(self.dim_out, 1, 'conv1x1', use_bias=False)(sc)
    if self.downsample:
      sc = avg_pool2(sc)
    h = x
    if self.normalize:
      h = InstanceNorm(name='norm1')(h)
    h = _conv(dim_in, 3, 'conv1')(lrelu(h))
    if self.downsample:
      h = avg_pool2(h)
    if self.normalize:
      h = InstanceNorm(name='norm2')(h)
    h = _conv(self.dim_out, 3, 'conv2')(lrelu(h))
    return (sc + h) / SQRT2


class AdainResBlk(nn.Module):
  """Official `AdainResBlk` with w_hpf = 0; the input width is read off x."""
  dim_out: int
  upsample: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, s: jax.Array) -> jax.Array:
    dim_in = x.shape[-1]
    h = lrelu(AdaIN(dim_in, name='norm1')(x, s))
    if self.upsample:
      h = upsample2x(h)
    h = _conv(self.dim_out, 3, 'conv1')(h)
    h = lrelu(AdaIN(self.dim_out, name='norm2')(h, s))
    h = _conv(self.dim_out, 3, 'conv2')(h)
    sc = upsample2x(x) if self.upsample else x
    if dim_in != self.dim_out:
      sc = _conv(self.dim_out, 1, 'conv1x1', use_bias=False)(sc)
    return (h + sc) / SQRT2


def _check_images(cfg: StarGANv2Config, x: jax.Array, who: str):
  r = cfg.resolution
  if x.ndim != 4 or x.shape[1:] != (r, r, IMG_CHANNELS):
    raise ValueError(f'{who} expects (N, {r}, {r}, {IMG_CHANNELS}) images, got {x.shape}')


def _check_labels(y: jax.Array, n: int, who: str):
  if y.shape != (n,) or not jnp.issubdtype(y.dtype, jnp.integer):
    raise ValueError(f'{who} expects integer domain labels of shape ({n},), got '
                     f'{y.shape} {y.dtype}')


def _select(out: jax.Array, y: Optional[jax.Array]) -> jax.Array:
  """out[i, y[i]] for out (N, num_domains, ...), or out itself when y is None.

  Like the official `out[idx, y]`; labels outside [0, num_domains) are clamped
  by jax indexing (not checked: y may be traced)."""
  if y is None:
    return out
  return out[jnp.arange(out.shape[0]), y]


class Generator(nn.Module):
  """G(x, s): (N, R, R, 3) images and (N, style_dim) styles -> (N, R, R, 3).

  `__call__(x, s, return_features=True)` returns (image, {'enc': enc, 'dec':
  dec}); `encode(x)` -> (content code at the bottom, enc) and `decode(h, s)` ->
  (image, dec) are the two halves (`apply(..., method=Generator.encode)`).
  enc[size]: output of the last encoder ResBlk whose output has that size
  (for the bottom size: after the bottleneck blocks); dec[size]: output of the
  last decoder AdainResBlk with that output size. Sizes are R/2, ..., bottom in
  enc and bottom, ..., R in dec (only R in both at R = 16). Submodules:
  from_rgb, enc_{i}, dec_{i} (official encode/decode order), to_rgb_norm, to_rgb.
  """
  config: StarGANv2Config

  def setup(self):
    cfg = self.config
    w = cfg.widths(cfg.g_repeat_num)
    self.from_rgb = _conv(w[0], 3)  # setup: names come from the attributes
    enc = [ResBlk(w[i + 1], normalize=True, downsample=True) for i in range(cfg.g_repeat_num)]
    enc += [ResBlk(w[-1], normalize=True) for _ in range(2)]
    dec = [AdainResBlk(w[-1]) for _ in range(2)]
    dec += [AdainResBlk(w[i - 1], upsample=True) for i in range(cfg.g_repeat_num, 0, -1)]
    self.enc = enc
    self.dec = dec
    self.to_rgb_norm = InstanceNorm()
    self.to_rgb = _conv(IMG_CHANNELS, 1)

  def encode(self, x: jax.Array):
    """(N, R, R, 3) -> (content code (N, r, r, C) at the bottom, enc features)."""
    _check_images(self.config, x, 'Generator.encode')
    h = self.from_rgb(x)
    feats = {}
    for block in self.enc:
      h = block(h)
      feats[h.shape[1]] = h
    return h, feats

  def decode(self, h: jax.Array, s: jax.Array):
    """(content code, (N, style_dim) styles) -> (image (N, R, R, 3), dec features)."""
    cfg = self.config
    if s.shape != (h.shape[0], cfg.style_dim):
      raise ValueError(f'Generator expects styles of shape ({h.shape[0]}, {cfg.style_dim}), '
                       f'got {s.shape}')
    feats = {}
    for block in self.dec:
      h = block(h, s)
      feats[h.shape[1]] = h
    return self.to_rgb(lrelu(self.to_rgb_norm(h))), feats

  def __call__(self, x: jax.Array, s: jax.Array, return_features: bool = False):
    h, enc = self.encode(x)
    img, dec = self.decode(h, s)
    if return_features:
      return img, {'enc': enc, 'dec': dec}
    return img


class _MLP(nn.Module):
  """`depth` x (Dense(hidden) + ReLU), then Dense(out_features) if given."""
  hidden: int
  depth: int
  out_features: Optional[int] = None

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    for i in range(self.depth):
      h = jax.nn.relu(nn.Dense(self.hidden, kernel_init=he_normal, name=f'fc{i}')(h))
    if self.out_features is not None:
      h = nn.Dense(self.out_features, kernel_init=he_normal, name=f'fc{self.depth}')(h)
    return h


class MappingNetwork(nn.Module):
  """F(z, y): (N, latent_dim) latents, (N,) int labels -> (N, style_dim) styles.

  Submodules: `shared` (fc0..fc3) and one head `unshared_{k}` (fc0..fc3) per
  domain. y=None returns every domain's style, (N, num_domains, style_dim).
  """
  config: StarGANv2Config

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array]) -> jax.Array:
    cfg = self.config
    if z.ndim != 2 or z.shape[1] != cfg.latent_dim:
      raise ValueError(f'MappingNetwork expects latents of shape (N, {cfg.latent_dim}), '
                       f'got {z.shape}')
    if y is not None:
      _check_labels(y, z.shape[0], 'MappingNetwork')
    h = _MLP(cfg.mapping_hidden, 4, name='shared')(z)
    out = jnp.stack([_MLP(cfg.mapping_hidden, 3, cfg.style_dim, name=f'unshared_{k}')(h)
                     for k in range(cfg.num_domains)], axis=1)
    return _select(out, y)


def _down_trunk(cfg: StarGANv2Config, x: jax.Array):
  """The shared trunk of StyleEncoder and Discriminator, in the caller's scope.

  Returns the (N, C) code after conv4x4 + lrelu and {size: ResBlk output}."""
  w = cfg.widths(cfg.d_repeat_num)
  h = _conv(w[0], 3, 'from_rgb')(x)
  feats = {}
  for i in range(cfg.d_repeat_num):
    h = ResBlk(w[i + 1], downsample=True, name=f'block_{i}')(h)
    feats[h.shape[1]] = h
  h = _conv(w[-1], 4, 'conv4x4', padding='VALID')(lrelu(h))
  return lrelu(h).reshape(h.shape[0], -1), feats


class StyleEncoder(nn.Module):
  """E(x, y): (N, R, R, 3) images, (N,) int labels -> (N, style_dim) styles.

  `return_features=True` returns (s, {size: output of downsampling ResBlk}),
  sizes R/2, ..., 4. Submodules: from_rgb, block_{i}, conv4x4, unshared_{k}
  (one Dense per domain). y=None: (N, num_domains, style_dim).
  """
  config: StarGANv2Config

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array], return_features: bool = False):
    cfg = self.config
    _check_images(cfg, x, 'StyleEncoder')
    if y is not None:
      _check_labels(y, x.shape[0], 'StyleEncoder')
    h, feats = _down_trunk(cfg, x)
    out = jnp.stack([nn.Dense(cfg.style_dim, kernel_init=he_normal, name=f'unshared_{k}')(h)
                     for k in range(cfg.num_domains)], axis=1)
    s = _select(out, y)
    return (s, feats) if return_features else s


class Discriminator(nn.Module):
  """D(x, y): (N, R, R, 3) images, (N,) int labels -> (N,) logits.

  The StyleEncoder's trunk, then `head`: one conv1x1 with num_domains output
  channels (official last layer of `main`); channel k is domain k's logit, so
  the per-domain "heads" are its output channels. `return_features=True`
  returns (logits, {size: output of ResBlk}), sizes R/2, ..., 4. Submodules:
  from_rgb, block_{i}, conv4x4, head. y=None: (N, num_domains).
  """
  config: StarGANv2Config

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array], return_features: bool = False):
    cfg = self.config
    _check_images(cfg, x, 'Discriminator')
    if y is not None:
      _check_labels(y, x.shape[0], 'Discriminator')
    h, feats = _down_trunk(cfg, x)
    out = _conv(cfg.num_domains, 1, 'head')(h[:, None, None, :]).reshape(h.shape[0], -1)
    logits = _select(out, y)
    return (logits, feats) if return_features else logits


def networks(cfg: StarGANv2Config) -> dict:
  """The four flax modules: {'G', 'mapping', 'style', 'D'}."""
  return {'G': Generator(cfg), 'mapping': MappingNetwork(cfg), 'style': StyleEncoder(cfg),
          'D': Discriminator(cfg)}


def init_stargan(cfg: StarGANv2Config, key: jax.Array) -> dict:
  """Fresh params ('params' collections) {'G', 'mapping', 'style', 'D'} of `cfg`."""
  if not isinstance(cfg, StarGANv2Config):
    raise ValueError(f'not a StarGANv2Config: {cfg!r}')
  nets = networks(cfg)
  r = cfg.resolution
  x = jnp.zeros((1, r, r, IMG_CHANNELS), jnp.float32)
  y = jnp.zeros((1,), jnp.int32)
  k_g, k_f, k_e, k_d = jax.random.split(key, 4)
  return {
      'G': nets['G'].init({'params': k_g}, x, jnp.zeros((1, cfg.style_dim)))['params'],
      'mapping': nets['mapping'].init({'params': k_f}, jnp.zeros((1, cfg.latent_dim)), y)['params'],
      'style': nets['style'].init({'params': k_e}, x, y)['params'],
      'D': nets['D'].init({'params': k_d}, x, y)['params'],
  }


def _as_dict(params) -> dict:
  if isinstance(params, flax.core.FrozenDict):
    params = flax.core.unfreeze(params)
  return dict(params)


def num_heads(params) -> int:
  """Domains of a MappingNetwork / StyleEncoder (`unshared_{k}`) or Discriminator
  (`head` channels) params dict."""
  p = _as_dict(params)
  n = sum(1 for k in p if k.startswith('unshared_'))
  if n:
    return n
  if 'head' in p:
    return p['head']['kernel'].shape[-1]
  raise KeyError(f'no per-domain heads (unshared_k or head) in params with keys {sorted(p)}')


def copy_head(params, src: int, dst: int) -> dict:
  """params with domain dst's head replaced by a copy of domain src's.

  `params` is one network's 'params' dict: a MappingNetwork's or StyleEncoder's
  (`unshared_{dst}` <- `unshared_{src}`) or a Discriminator's (output channel
  dst of `head` <- channel src). Pure: the input is not modified; other heads
  and the shared layers are the same arrays as in the input."""
  p = _as_dict(params)
  n = num_heads(p)
  for k in (src, dst):
    if not 0 <= k < n:
      raise KeyError(f'head {k} out of range: the params have {n} heads')
  if f'unshared_{src}' in p:
    p[f'unshared_{dst}'] = jax.tree.map(jnp.array, p[f'unshared_{src}'])  # jnp.array copies
  else:
    p['head'] = {name: jnp.asarray(a).at[..., dst].set(jnp.asarray(a)[..., src])
                 for name, a in p['head'].items()}
  return p


def init_heads_from(params, src: int = 0) -> dict:
  """params with every domain's head a copy of domain src's (see `copy_head`)."""
  for dst in range(num_heads(params)):
    if dst != src:
      params = copy_head(params, src, dst)
  return params
