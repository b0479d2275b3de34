"""The pix2pix U-Net generator (Isola et al., CVPR 2017), a GPD baseline student.

Follows junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py
`UnetGenerator` / `UnetSkipConnectionBlock`, with num_downs = log2(resolution)
(down to 1x1; official unet_256 uses 8 at 256 px). Level i (0 = outermost):

  down_i: [lrelu 0.2 unless i == 0] -> conv 4x4 s2 pad 1 to min(ngf * 2^i,
          max_channels) -> [instance norm unless outermost or innermost]
  up_i:   relu -> ConvTranspose 4x4 s2 pad 1 -> (i == 0: tanh; else instance
          norm -> [dropout] -> concat [skip, up] with skip = level i's input)

(The official in-place LeakyReLU overwrites the skip x with lrelu(x) before it
is concatenated; the next op is a ReLU and relu(lrelu(x)) = relu(x), so the
function is the same as with the plain skip used here.) Convs carry biases
(official `use_bias` is True with instance norm).

Norm: instance norm, the official 'instance' option (no affine); the default
is BatchNorm (see fsig_jax/nn/patchgan.py for why we use instance norm). Norm
is skipped on any 1x1 map (instance norm of a 1x1 map is identically zero);
in this layout only the innermost down output is 1x1, and it has no norm
officially, so the guard never changes the network.

Dropout: the official generator puts Dropout(0.5) after the up norm of the
ngf*8 -> ngf*8 blocks, which at 256 px are the three innermost levels apart
from the innermost. Decision: we always use the (up to) three innermost
non-innermost, non-outermost levels, levels max(1, L-4) .. L-2 for L =
num_downs. At 256 px this is exactly the official unet_256; at 128 px official
unet_128 has two such blocks where we have three; below 256 px we keep dropout
(the official rule would have one block at 64 px and none at 32 px). Dropout
draws from the 'dropout' rng collection when deterministic=False.

The ConvTranspose uses explicit padding ((2, 2), (2, 2)) = kernel - 1 - torch
padding, which is torch ConvTranspose2d(k=4, s=2, p=1) geometry: H -> 2H.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.models.students.config import Pix2PixConfig
from fsig_jax.nn.norm import instance_norm

LRELU_SLOPE = 0.2
DOWN_PAD = ((1, 1), (1, 1))
UP_PAD = ((2, 2), (2, 2))  # k - 1 - p for torch ConvTranspose2d(4, 2, padding=1)
N_DROPOUT = 3


def _norm(x: jax.Array) -> jax.Array:
  return x if x.shape[1] * x.shape[2] == 1 else instance_norm(x)


def dropout_levels(num_downs: int) -> range:
  """Levels whose up block has dropout: the three innermost non-innermost, non-outermost."""
  return range(max(1, num_downs - 1 - N_DROPOUT), num_downs - 1)


class Pix2PixUNet(nn.Module):
  """(N, R, R, in_channels) in [-1, 1] -> (N, R, R, out_channels) in [-1, 1]."""
  config: Pix2PixConfig

  @nn.compact
  def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:
    cfg = self.config
    r, n = cfg.resolution, cfg.num_downs
    if x.ndim != 4 or x.shape[1:] != (r, r, cfg.in_channels):
      raise ValueError(f'Pix2PixUNet expects (N, {r}, {r}, {cfg.in_channels}) inputs, got {x.shape}')
    inputs = []  # inputs[i]: the input of level i, its skip
    h = x
    for i in range(n):
      inputs.append(h)
      if i > 0:
        h = jax.nn.leaky_relu(h, LRELU_SLOPE)
      h = nn.Conv(cfg.width(i), (4, 4), strides=(2, 2), padding=DOWN_PAD, name=f'down{i}')(h)
      if 0 < i < n - 1:
        h = _norm(h)
    drop = dropout_levels(n)
    for i in reversed(range(n)):
      out_ch = cfg.out_channels if i == 0 else cfg.width(i - 1)
      h = nn.ConvTranspose(out_ch, (4, 4), strides=(2, 2), padding=UP_PAD,
                           name=f'up{i}')(jax.nn.relu(h))
      if i == 0:
        return jnp.tanh(h)
      h = _norm(h)
      if i in drop and cfg.dropout > 0:
        h = nn.Dropout(cfg.dropout)(h, deterministic=deterministic)
      h = jnp.concatenate([inputs[i], h], axis=-1)
