"""Modulated (and demodulated) convolution of StyleGAN2 (Karras et al. 2020, Sec. 2.2).

Each sample's style s scales the input channels of a shared kernel; with
demodulation the output channels are rescaled by 1 / sqrt(sum (w * s)^2 + eps)
(Eq. 3). We compute it as scale-inputs -> shared conv -> scale-outputs, which
is algebraically identical to the per-sample "fused" kernel of the official
code (ada-pytorch `modulated_conv2d(fused_modconv=False)`), and runs as one
dense convolution over the whole batch on every backend.
"""
import math
from typing import Sequence

import jax
import jax.numpy as jnp

from fsig_jax.nn import conv, upfirdn

DEMOD_EPS = 1e-8  # Eq. 3; both official codebases.


def modulated_conv2d(x: jax.Array, kernel: jax.Array, styles: jax.Array,
                     up: int = 1, demodulate: bool = True,
                     resample_taps: Sequence[float] = (1, 3, 3, 1)) -> jax.Array:
  """Modulated conv of NHWC `x` with HWIO `kernel` and per-sample `styles`.

  `styles` (N, in) come from the layer's affine projection; the equalized-LR
  gain 1 / sqrt(fan_in) is folded into them (rosinality `ModulatedConv2d.scale`,
  ada-pytorch `ToRGBLayer.weight_gain`; with demodulation the gain cancels up
  to eps). With up=2 the conv is transposed (stride 2) and followed by the FIR
  blur, as rosinality `ModulatedConv2d(upsample=True)` and ada-pytorch
  `conv2d_resample(up=2)`.
  """
  k, _, cin, _ = kernel.shape
  styles = styles * (1.0 / math.sqrt(cin * k * k))
  x = x * styles[:, None, None, :].astype(x.dtype)
  if up > 1:
    f = upfirdn.setup_filter(tuple(resample_taps))
    x = conv.conv_transpose_up2(x, kernel)
    pad = upfirdn.blur_pad(f.shape[0], up, k, up=True)
    x = upfirdn.upfirdn2d(x, f, padding=pad, gain=up * up)
  else:
    x = conv.conv2d(x, kernel, padding=k // 2)
  if demodulate:
    sq = jnp.sum(jnp.square(kernel), axis=(0, 1))  # (in, out)
    dcoefs = jax.lax.rsqrt(jnp.square(styles) @ sq + DEMOD_EPS)  # (N, out)
    x = x * dcoefs[:, None, None, :].astype(x.dtype)
  return x
