"""Equalized-learning-rate dense and conv layers, and the fused bias+activation.

Equalized learning rate (Karras et al. 2018, Sec. 4.1): weights are stored as
N(0, 1) / lr_mul and scaled at run time by lr_mul / sqrt(fan_in), so Adam sees
every layer at the same scale. Stored parameters are the raw (unscaled) ones,
exactly as in the official checkpoints, so conversion is a relabelling only.
Kernels are HWIO (Flax convention); dense kernels are (in, out).
"""
import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fsig_jax.nn import conv, upfirdn

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2  # StyleGAN2's leaky-ReLU slope (both official codebases).


def bias_act(x: jax.Array, b: Optional[jax.Array], act: str = 'linear',
             gain: Optional[float] = None,
             clamp: Optional[float] = None) -> jax.Array:
  """x + b, then activation, then gain, then optional clamp.

  Mirrors `bias_act` of stylegan2-ada-pytorch (def_gain sqrt(2) for lrelu, 1 for
  linear) and rosinality's `fused_leaky_relu` (leaky_relu(x + b) * sqrt(2)).
  Bias broadcasts over the last (channel) axis.
  """
  if b is not None:
    x = x + b.astype(x.dtype)
  if act == 'lrelu':
    x = jnp.where(x >= 0, x, x * LRELU_SLOPE)
    gain = SQRT2 if gain is None else gain
  elif act == 'linear':
    gain = 1.0 if gain is None else gain
  else:
    raise ValueError(f'unknown activation {act!r}; use "lrelu" or "linear"')
  if gain != 1:
    x = x * gain
  if clamp is not None:
    x = jnp.clip(x, -clamp, clamp)
  return x


def _normal_over(scale: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype) / scale
  return init


class EqualDense(nn.Module):
  """Fully connected layer with equalized LR and lr multiplier.

  Rosinality `EqualLinear` / ada-pytorch `FullyConnectedLayer`: effective
  weight = kernel * lr_mul / sqrt(fan_in), effective bias = bias * lr_mul.
  """
  features: int
  lr_mul: float = 1.0
  bias_init: float = 0.0
  use_bias: bool = True
  act: str = 'linear'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    kernel = self.param('kernel', _normal_over(self.lr_mul),
                        (fan_in, self.features))
    y = x @ (kernel * (self.lr_mul / math.sqrt(fan_in))).astype(x.dtype)
    b = None
    if self.use_bias:
      b = self.param('bias', nn.initializers.constant(self.bias_init),
                     (self.features,)) * self.lr_mul
    return bias_act(y, b, self.act)


class EqualConv2d(nn.Module):
  """Equalized-LR conv with optional FIR-filtered 2x downsampling.

  ada-pytorch `Conv2dLayer` (rosinality `ConvLayer`): for down=2 the input is
  blurred with the resample filter and then convolved with stride 2. `gain`
  multiplies the activation output (the resnet D passes sqrt(0.5)); the clamp,
  when set, is conv_clamp * gain as in ada-pytorch.
  """
  features: int
  kernel_size: int = 3
  down: int = 1
  use_bias: bool = True
  act: str = 'linear'
  conv_clamp: Optional[float] = None
  resample_taps: Sequence[float] = (1, 3, 3, 1)

  @nn.compact
  def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
    cin, k = x.shape[-1], self.kernel_size
    kernel = self.param('kernel', nn.initializers.normal(1.0),
                        (k, k, cin, self.features))
    w = kernel * (1.0 / math.sqrt(cin * k * k))
    if self.down > 1:
      f = upfirdn.setup_filter(tuple(self.resample_taps))
      pad = upfirdn.blur_pad(f.shape[0], self.down, k, up=False)
      x = upfirdn.upfirdn2d(x, f, padding=pad)
      x = conv.conv2d(x, w, stride=self.down)
    else:
      x = conv.conv2d(x, w, padding=k // 2)
    b = self.param('bias', nn.initializers.zeros, (self.features,)) \
        if self.use_bias else None
    default_gain = SQRT2 if self.act == 'lrelu' else 1.0
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return bias_act(x, b, self.act, gain=default_gain * gain, clamp=clamp)

