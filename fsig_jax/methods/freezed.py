"""FreezeD: fine-tune with the lower (input-side) layers of D frozen.

Mo et al. 2020, "Freeze the Discriminator: a Simple Baseline for Fine-Tuning
GANs": freezing the lower discriminator layers and fine-tuning the upper ones
prevents the discriminator from overfitting the few target images. Layers are
counted as NVIDIA's stylegan2-ada-pytorch `--freezed=N` does (networks.py,
`DiscriminatorBlock.trainable_gen`): from the input, per block fromrgb (first
block only), conv0, conv1, skip; the 4x4 epilogue always trains.

Default: the paper gives no StyleGAN2 layer count, so we freeze every block
above 16x16 (the epilogue and the 16x16 and 8x8 blocks train); set
`freeze_layers` to follow a particular paper.
"""
import math
from typing import Optional

from fsig_jax.errors import ConfigError
import fsig_jax.methods.masks as masks
from fsig_jax.methods.base import Method, MethodInit
from fsig_jax.models.config import resolutions


def layer_index(resolution: int):
  """{(block, layer): ada-pytorch layer index} for a resnet D."""
  index, i = {}, 0
  for res in reversed(resolutions(resolution)[1:]):
    names = (['fromrgb'] if res == resolution else []) + ['conv0', 'conv1', 'skip']
    for name in names:
      index[(f'b{res}', name)] = i
      i += 1
  return index


def default_freeze_layers(resolution: int) -> int:
  """Layers of all blocks above 16x16 (none at 16 px and below)."""
  return sum(1 for (blk, _), _ in layer_index(resolution).items() if int(blk[1:]) > 16)


def freezed(freeze_layers: Optional[int] = None) -> Method:
  """FreezeD with the first `freeze_layers` D layers frozen."""

  def init(ictx):
    res = ictx.bundle.config.resolution
    n = default_freeze_layers(res) if freeze_layers is None else freeze_layers
    index = layer_index(res)
    if not 0 <= n <= len(index):
      raise ConfigError(f'freeze_layers must be in [0, {len(index)}] for a {res}px D, got {n}; '
                        f'set config.method.kwargs.freezed.freeze_layers in that range')
    d_params = {'net': ictx.bundle.nets['D']['params']}
    keep = lambda p: index.get(tuple(p[1:3]), math.inf) >= n  # noqa: E731
    return MethodInit(state={'d_mask': masks.tree_mask(d_params, keep)})

  def grad_transform(side, grads, params, mstate):
    if side != 'D':
      return grads
    return {**grads, 'net': masks.apply_mask(grads['net'], mstate['d_mask']['net'])}

  return Method(name='freezed', init=init, grad_transform=grad_transform)
