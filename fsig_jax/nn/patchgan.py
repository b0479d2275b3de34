"""The pix2pix PatchGAN discriminator (Isola et al., CVPR 2017).

Follows junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py
`NLayerDiscriminator`: conv 4x4 stride 2 pad 1 to ndf + leaky ReLU 0.2 (no
norm); for n in 1 .. n_layers-1 conv 4x4 s2 pad 1 to ndf * min(2^n, 8) +
norm + lrelu; conv 4x4 s1 pad 1 to ndf * min(2^n_layers, 8) + norm + lrelu;
conv 4x4 s1 pad 1 to one channel (patch logits, no activation). Convs carry a
bias (the official `use_bias` is True for instance norm).

Deviation: the official default norm is BatchNorm. We use instance norm
(`norm='instance'`) or none. pix2pix trains at batch 1, where train-mode
BatchNorm equals instance norm; instance norm keeps D independent of the
batch size, as CycleGAN's default does.

The (kernel, stride) list `layers(n_layers)` builds the module and gives the
analytic `receptive_field`, so the two cannot drift apart.
"""
from typing import List, Tuple

import flax.linen as nn
import jax

from fsig_jax.nn.norm import instance_norm

KERNEL, PAD = 4, 1
LRELU_SLOPE = 0.2
NORMS = ('instance', 'none')


def layers(n_layers: int) -> List[Tuple[int, int]]:
  """(kernel, stride) of every conv, input to output: n_layers strided, two unstrided."""
  if n_layers < 1:
    raise ValueError(f'n_layers must be >= 1, got {n_layers}')
  return [(KERNEL, 2)] * n_layers + [(KERNEL, 1)] * 2


def receptive_field(n_layers: int) -> int:
  """Input pixels per side seen by one output logit: rf_in = (rf_out - 1) * stride + kernel,
  from the output back (n_layers 1 -> 16, 3 -> 70, 5 -> 286)."""
  rf = 1
  for k, s in reversed(layers(n_layers)):
    rf = (rf - 1) * s + k
  return rf


def n_layers_for(rf: int, max_layers: int = 8) -> int:
  """The n_layers whose receptive field is `rf` (inverse of `receptive_field`)."""
  valid = {receptive_field(n): n for n in range(1, max_layers + 1)}
  if rf not in valid:
    raise ValueError(f'no PatchGAN has receptive field {rf}; valid values: '
                     + ', '.join(f'{r} (n_layers={n})' for r, n in valid.items()))
  return valid[rf]


class PatchGAN(nn.Module):
  """NHWC images -> (N, h, w, 1) patch logits.

  Attributes:
    ndf: width of the first conv (official 64).
    n_layers: strided convs (official 3: the 70x70 PatchGAN).
    norm: 'instance' or 'none'.
  """
  ndf: int = 64
  n_layers: int = 3
  norm: str = 'instance'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.norm not in NORMS:
      raise ValueError(f'norm must be one of {NORMS}, got {self.norm!r}')
    specs = layers(self.n_layers)
    pad = ((PAD, PAD), (PAD, PAD))
    for i, (k, s) in enumerate(specs):
      last = i == len(specs) - 1
      width = 1 if last else self.ndf * min(2 ** i, 8)
      x = nn.Conv(width, (k, k), strides=(s, s), padding=pad, name=f'conv{i}')(x)
      if last:
        break
      if i > 0 and self.norm == 'instance':
        x = instance_norm(x)
      x = jax.nn.leaky_relu(x, LRELU_SLOPE)
    return x
