"""The one 2-D convolution of fsig-jax (NHWC x HWIO), with two implementations.

'native' uses XLA's convolution, strided and lhs-dilated forms included; GPU
and TPU backends run all of its derivatives well. On CPU, XLA computes weight
gradients of strided and dilated convolutions, and the double backward that
R1 needs, on a slow generic path (a 512-channel 32 px stride-2 layer: R1
gradient 2.4 s). 'im2col' (the CPU default) gathers the k*k shifted slices
into one (N, H, W, k*k*C) tensor and multiplies it by the (k*k*C, O) kernel,
so every derivative of every order is a matrix multiply (same layer: 0.15 s).
The transposed stride-2 convolution is computed as a stride-1 convolution
with 4 output phases (sub-pixel convolution, Shi et al. 2016) on either path
except 'native', which uses XLA's own. Results agree to float rounding.
Set FSIG_CONV_IMPL=native|im2col to choose (the test run uses 'native': it
compiles faster, and the two are tested equal).
"""
import os
from typing import Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

DN = ('NHWC', 'HWIO', 'NHWC')
Padding = Union[int, Sequence[Tuple[int, int]]]


def default_impl() -> str:
  """$FSIG_CONV_IMPL if set, else 'im2col' on CPU and 'native' elsewhere."""
  return os.environ.get('FSIG_CONV_IMPL') or (
      'im2col' if jax.default_backend() == 'cpu' else 'native')


def _pairs(padding: Padding):
  return [(padding, padding)] * 2 if isinstance(padding, int) else [tuple(p) for p in padding]


def conv2d(x: jax.Array, w: jax.Array, stride: int = 1, padding: Padding = 0,
           impl: Optional[str] = None) -> jax.Array:
  """Cross-correlation of NHWC `x` with HWIO `w` (torch `conv2d` semantics)."""
  impl = impl or default_impl()
  pads = _pairs(padding)
  w = w.astype(x.dtype)
  if impl == 'native':
    return jax.lax.conv_general_dilated(x, w, (stride, stride), pads, dimension_numbers=DN)
  if impl != 'im2col':
    raise ValueError(f"conv impl must be 'native' or 'im2col', got {impl!r}")
  kh, kw, c, o = w.shape
  if any(p for pair in pads for p in pair):
    x = jnp.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
  n, h, wd, _ = x.shape
  oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
  cols = [jax.lax.slice(x, (0, i, j, 0), (n, i + (oh - 1) * stride + 1,
                                          j + (ow - 1) * stride + 1, c), (1, stride, stride, 1))
          for i in range(kh) for j in range(kw)]
  patches = cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)
  return jnp.einsum('nhwk,ko->nhwo', patches, w.reshape(kh * kw * c, o))


def conv_transpose_up2(x: jax.Array, w: jax.Array, impl: Optional[str] = None) -> jax.Array:
  """torch `conv_transpose2d(x, w, stride=2, padding=0)` for an HWIO kernel.

  Output size 2H + k - 2. Phase a of the output, y[2i + a], is the
  correlation of x (padded by m - 1, m = ceil(k / 2)) with the taps
  W[a + 2 (m - 1 - j)], j = 0..m-1; the four phases are the output channels
  of one stride-1 conv, then interleaved (depth-to-space).
  """
  impl = impl or default_impl()
  k = w.shape[0]
  if impl == 'native':
    # Correlation of the zero-dilated input with the flipped kernel, padded by k - 1.
    return jax.lax.conv_general_dilated(x, w[::-1, ::-1].astype(x.dtype), (1, 1),
                                        [(k - 1, k - 1)] * 2, lhs_dilation=(2, 2),
                                        dimension_numbers=DN)
  n, h, wd, c = x.shape
  m = (k + 1) // 2
  wp = jnp.pad(w, [(0, 2 * m - k), (0, 2 * m - k), (0, 0), (0, 0)])  # taps t = 2u + a
  wp = wp.reshape(m, 2, m, 2, c, -1)[::-1, :, ::-1]  # u -> j = m - 1 - u
  wp = wp.transpose(0, 2, 4, 1, 3, 5).reshape(m, m, c, -1)  # out channels (a, b, o)
  y = conv2d(x, wp, padding=m - 1, impl=impl)  # (N, H + m - 1, W + m - 1, 4 * o)
  hh, ww = y.shape[1], y.shape[2]
  y = y.reshape(n, hh, ww, 2, 2, -1).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * hh, 2 * ww, -1)
  return y[:, :2 * h + k - 2, :2 * wd + k - 2]
