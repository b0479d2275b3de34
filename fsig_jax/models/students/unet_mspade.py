"""The GPD student: a U-Net whose decoder is modulated by multi-scale SPADE.

"Few-shot Face Image Translation via GAN Prior Distillation" (GPD) describes
its student as an encoder-decoder with multi-scale SPADE (MSPADE) but ships no
code; this layout is our design decision, built from official parts:

Encoder (feature embedding): stem conv3x3 to base_channels + lrelu 0.2 at full
resolution (`enc{R}`), then per halving a conv 4x4 stride 2 pad 1 + instance
norm + lrelu 0.2 (`enc{r}`), widths doubling from base_channels, capped at
max_channels, down to bottom_resolution. Every scale's feature is kept.

Decoder: starting from the bottom feature, at each scale r from bottom to full
resolution a SPADE residual block (`dec{r}`) whose SPADE modulation input is
the encoder feature at r, then nearest 2x upsampling to the next scale; at the
end lrelu 0.2 + conv3x3 to out_channels (`out`) + tanh, as the official
SPADEGenerator's `conv_img` tail. The encoder feature takes the place of
SPADE's segmentation map and is the U-Net skip: this is the multi-scale SPADE.

The residual block is NVlabs/SPADE models/networks/architecture.py
`SPADEResnetBlock`: fmiddle = min(fin, fout); dx = conv_1(lrelu(norm_1(
conv_0(lrelu(norm_0(x, c)))), c)); shortcut x, or conv_s(norm_s(x, c)) (1x1,
no bias, learned) when fin != fout. Deviations: no spectral norm (official
option `spectral` in norm_G); SPADE's param-free norm is instance norm
(`fsig_jax.nn.spade`); SPADE hidden width is `spade_hidden` (official 128).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.models.students.config import UNetMSPADEConfig
from fsig_jax.nn.norm import instance_norm
from fsig_jax.nn.spade import SPADE

LRELU_SLOPE = 0.2


def lrelu(x: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x, LRELU_SLOPE)


def upsample2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x (official `nn.Upsample(scale_factor=2)`)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class SPADEResBlock(nn.Module):
  """Official `SPADEResnetBlock` (without spectral norm); cond is the encoder feature."""
  features: int
  spade_hidden: int

  @nn.compact
  def __call__(self, x, cond):
    fin, fout = x.shape[-1], self.features
    fmid = min(fin, fout)
    conv3 = lambda f, name: nn.Conv(f, (3, 3), padding='SAME', name=name)
    dx = conv3(fmid, 'conv_0')(lrelu(SPADE(self.spade_hidden, name='norm_0')(x, cond)))
    dx = conv3(fout, 'conv_1')(lrelu(SPADE(self.spade_hidden, name='norm_1')(dx, cond)))
    if fin != fout:
      x = SPADE(self.spade_hidden, name='norm_s')(x, cond)
      x = nn.Conv(fout, (1, 1), use_bias=False, name='conv_s')(x)
    return x + dx


class UNetMSPADE(nn.Module):
  """(N, R, R, in_channels) in [-1, 1] -> (N, R, R, out_channels) in [-1, 1]."""
  config: UNetMSPADEConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    r = cfg.resolution
    if x.ndim != 4 or x.shape[1:] != (r, r, cfg.in_channels):
      raise ValueError(f'UNetMSPADE expects (N, {r}, {r}, {cfg.in_channels}) inputs, got {x.shape}')
    scales = cfg.scales
    h = lrelu(nn.Conv(cfg.width(r), (3, 3), padding='SAME', name=f'enc{r}')(x))
    feats = {r: h}
    for s in scales[1:]:
      h = nn.Conv(cfg.width(s), (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                  name=f'enc{s}')(h)
      h = lrelu(instance_norm(h))
      feats[s] = h
    for s in reversed(scales):
      h = SPADEResBlock(cfg.width(s), cfg.spade_hidden, name=f'dec{s}')(h, feats[s])
      if s != r:
        h = upsample2x(h)
    h = nn.Conv(cfg.out_channels, (3, 3), padding='SAME', name='out')(lrelu(h))
    return jnp.tanh(h)
