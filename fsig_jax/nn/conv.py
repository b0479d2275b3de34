"""The one 2-D convolution of fsig-jax (NHWC x HWIO), with three implementations.

'native' uses XLA's convolution, strided and lhs-dilated forms included; GPU
and TPU backends run all of its derivatives well. On CPU, XLA computes weight
gradients of strided and dilated convolutions, and the double backward that R1
needs, on a slow generic path (a 512-channel 32 px stride-2 layer: R1 gradient
2.4 s), and inside a lax.cond every weight gradient (see 'hybrid'). 'im2col'
gathers the k*k shifted slices into one (N, H, W, k*k*C) tensor and multiplies
it by the (k*k*C, O) kernel, so every derivative of every order is a matrix
multiply (same layer: 0.15 s), but its forward is 2-3x slower than XLA's
stride-1 convolution. 'hybrid' (issue 18; the CPU default since session 11)
uses each where it is fast and keeps no patches alive for the backward: the
odd-sized 'same' convolutions (stride 1, padding k // 2: the 3x3 layers of G
and D) run XLA's convolution forward through a custom VJP whose input gradient
is the same convolution with the flipped kernel and whose weight gradient is
the im2col product one image at a time (_filter_grad), each again through a
custom VJP, so that derivatives of every order are XLA's canonical convolution
or a matmul; a 1x1 unpadded conv is the matmul it is; every other one (D's
stride-2 layers, the 2x2 sub-pixel kernel of `conv_transpose_up2`, whose
forward and backward take XLA 4.4 s and im2col 0.20 s at 32 px, 256 channels)
goes through a custom VJP that saves only x and w, runs XLA's convolution
forward at stride 1 (the im2col product at stride > 1, where XLA's is slower)
and the im2col derivatives in the backward with the patches recomputed there.
'im2col' keeps every layer's k*k-times patch tensor for the backward: four 3x3
layers at 64 px, 256 channels, need 5.4x the temporaries of 'native' or
'hybrid'.

Leaving hybrid's 3x3 derivatives to XLA (session 10) made the lazily
regularised steps 15-36x slower: XLA's CPU pass that puts a weight gradient
(labels f01b_i01o->01bf) into the canonical form its fast kernels take does
not reach the branches of a lax.cond, where those steps run. With the custom
rules (session 11), over a whole 16-step lazy cycle of the 64 px step, hybrid
needs 0.69x im2col's temporaries for TGAN and 0.63x for CDC, and takes 0.95x
and 0.94x its time, so it replaced im2col as the CPU default
(benchmarks/results/conv_impl_cpu.md).

Measured with benchmarks/conv_impl.py, benchmarks/step_time.py
--conv_impls=im2col,hybrid and benchmarks/compare_torch.py
--conv_impls=im2col,hybrid (README "Benchmarks"). Forward-mode autodiff
(jax.jvp) is not defined through a custom VJP; fsig-jax uses reverse mode only.
The transposed stride-2 convolution is computed as a stride-1 convolution
with 4 output phases (sub-pixel convolution, Shi et al. 2016) on every path
except 'native', which uses XLA's own. Results agree to float rounding.
Set FSIG_CONV_IMPL=native|im2col|hybrid to choose (the test run uses
'native': it compiles faster, and the three are tested equal).
"""
import functools
import math
import os
from typing import Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

DN = ('NHWC', 'HWIO', 'NHWC')
IMPLS = ('native', 'im2col', 'hybrid')
Padding = Union[int, Sequence[Tuple[int, int]]]


def default_impl() -> str:
  """$FSIG_CONV_IMPL if set, else 'hybrid' on CPU and 'native' elsewhere."""
  return os.environ.get('FSIG_CONV_IMPL') or (
      'hybrid' if jax.default_backend() == 'cpu' else 'native')


def _pairs(padding: Padding) -> Tuple[Tuple[int, int], Tuple[int, int]]:
  return (((padding, padding),) * 2 if isinstance(padding, int)
          else tuple(tuple(int(q) for q in p) for p in padding))


def conv2d(x: jax.Array, w: jax.Array, stride: int = 1, padding: Padding = 0,
           impl: Optional[str] = None) -> jax.Array:
  """Cross-correlation of NHWC `x` with HWIO `w` (torch `conv2d` semantics)."""
  impl = impl or default_impl()
  pads = _pairs(padding)
  w = w.astype(x.dtype)
  if impl == 'native':
    return jax.lax.conv_general_dilated(x, w, (stride, stride), pads, dimension_numbers=DN)
  if impl not in IMPLS:
    raise ValueError(f'conv impl must be one of {IMPLS} (FSIG_CONV_IMPL), got {impl!r}')
  if any(p < 0 for pair in pads for p in pair):
    raise ValueError(f"conv impl {impl!r} needs padding >= 0, got {pads}; crop the input "
                     "first or use impl='native'")
  kh, kw = w.shape[:2]
  if impl == 'im2col' or (kh, kw, stride, pads) == (1, 1, 1, ((0, 0), (0, 0))):
    return _im2col(x, w, stride, pads)  # a 1x1 conv is a matmul, its patches x itself
  if stride == 1 and kh % 2 and kw % 2 and pads == _same_pads(w.shape):
    return _same_conv(x, w)
  return _im2col_vjp(x, w, stride, pads)


def _im2col(x, w, stride, pads):
  return jnp.einsum('nhwk,ko->nhwo', _patches(x, w.shape, stride, pads),
                    w.reshape(-1, w.shape[-1]))


def _patches(x, wshape, stride, pads):
  """The (N, OH, OW, kh*kw*C) im2col tensor: the kh*kw shifted (strided) slices
  of the padded x, concatenated tap-major to match w.reshape(kh*kw*C, O)."""
  kh, kw, c, _ = wshape
  if any(p for pair in pads for p in pair):
    x = jnp.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
  n, h, wd, _ = x.shape
  oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
  cols = [jax.lax.slice(x, (0, i, j, 0), (n, i + (oh - 1) * stride + 1,
                                          j + (ow - 1) * stride + 1, c), (1, stride, stride, 1))
          for i in range(kh) for j in range(kw)]
  return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _im2col_vjp(x, w, stride, pads):
  """Forward: XLA's convolution at stride 1; at stride > 1 the im2col product,
  which XLA's strided CPU convolution does not beat (benchmarks/conv_impl.py:
  2x slower forward on D's stride-2 3x3 layer). Neither keeps the patches."""
  return _xla_conv(x, w, pads) if stride == 1 else _im2col(x, w, stride, pads)


def _im2col_vjp_fwd(x, w, stride, pads):
  return _im2col_vjp(x, w, stride, pads), (x, w)  # residuals: no k*k-times patch tensor


def _im2col_vjp_bwd(stride, pads, res, g):
  """The im2col derivatives with the patches recomputed here, freed after this
  layer: dw = patches^T g; dx = the transpose of the patch gather (pads and
  strided-slice transposes) applied to g w^T. Both are matmuls and data
  movement, and so are their own derivatives (R1, path length)."""
  x, w = res
  patches = functools.partial(_patches, wshape=w.shape, stride=stride, pads=pads)
  w2 = w.reshape(-1, w.shape[-1])
  dw = jnp.einsum('nhwk,nhwo->ko', patches(x), g).reshape(w.shape)
  dx, = jax.linear_transpose(patches, x)(jnp.einsum('nhwo,ko->nhwk', g, w2))
  return dx, dw


_im2col_vjp.defvjp(_im2col_vjp_fwd, _im2col_vjp_bwd)


def _same_pads(wshape):
  """The padding of an odd-sized stride-1 'same' convolution."""
  return ((wshape[0] // 2,) * 2, (wshape[1] // 2,) * 2)


def _xla_conv(x, w, pads):
  """XLA's stride-1 convolution with w materialised in HWIO order: the barrier
  keeps XLA from folding a kernel flip or transpose (_flip, the sub-pixel
  kernel of conv_transpose_up2) into the convolution's dimension labels, a
  layout that inside a lax.cond branch runs on XLA's slow generic loop (see
  _filter_grad)."""
  return jax.lax.conv_general_dilated(x, jax.lax.optimization_barrier(w), (1, 1), pads,
                                      dimension_numbers=DN)


def _flip(w):
  """The kernel of the input gradient: spatially flipped, in and out swapped."""
  return w[::-1, ::-1].swapaxes(2, 3)


@jax.custom_vjp
def _same_conv(x, w):
  """hybrid's odd-sized stride-1 'same' convolution; see _same_conv_bwd."""
  return _xla_conv(x, w, _same_pads(w.shape))


def _same_conv_fwd(x, w):
  # _same_conv, not _xla_conv: a second derivative differentiates this function
  # itself, and must meet the custom rule again rather than XLA's own.
  return _same_conv(x, w), (x, w)


def _same_conv_bwd(res, g):
  """dx = the 'same' convolution of g with the flipped kernel (this function
  again), dw = _filter_grad(x, g), whose own derivatives are this function:
  every derivative of every order is XLA's convolution in NHWC x HWIO form or
  an im2col matmul."""
  x, w = res
  return _same_conv(g, _flip(w)), _filter_grad(x, g, w.shape[:2])


_same_conv.defvjp(_same_conv_fwd, _same_conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _filter_grad(x, g, ksize):
  """dw[i, j, c, o] = sum_{n, h, w} x_pad[n, h + i, w + j, c] g[n, h, w, o], the
  weight gradient of a 'same' convolution: the im2col product, one image at a
  time (lax.scan), so that only one image's (H, W, k*k*C) patches exist at once.
  XLA's own weight gradient (a convolution with the image as the window, labels
  f01b_i01o->01bf) has two faults on CPU: a pass that transposes it into
  canonical form does not reach the branches of a lax.cond, where the lazily
  regularised steps run, and there it takes a generic loop about 100x slower
  (`benchmarks/conv_impl.py --cond`: a 512-channel 32 px layer's forward and
  backward 38.2 s against hybrid's 0.39 s); written canonically, in a prototype,
  it ran at about a third of the forward convolution's rate in the 64 px step.
  Unrolled over the k*k taps instead (prototype), XLA kept every tap's slice
  alive at once (step temporaries 2.46 GiB, im2col's level). Accumulates in
  float32. Session 11 measurements in benchmarks/results/conv_impl_cpu.md."""
  wshape = tuple(ksize) + (x.shape[-1], g.shape[-1])
  pads = _same_pads(wshape)

  def add_image(acc, xg):
    xi, gi = xg
    return acc + jnp.einsum('nhwk,nhwo->ko', _patches(xi[None], wshape, 1, pads), gi[None],
                            preferred_element_type=jnp.float32), None

  acc = jax.lax.scan(add_image, jnp.zeros((math.prod(wshape[:3]), wshape[3]), jnp.float32),
                     (x, g))[0]
  return acc.reshape(wshape).astype(jnp.promote_types(x.dtype, g.dtype))


def _filter_grad_fwd(x, g, ksize):
  return _filter_grad(x, g, ksize), (x, g)


def _filter_grad_bwd(ksize, res, h):
  """_filter_grad is bilinear: d/dx is the input gradient of a convolution of
  g with h, d/dg the convolution of x with h."""
  del ksize
  x, g = res
  return _same_conv(g, _flip(h)), _same_conv(x, h)


_filter_grad.defvjp(_filter_grad_fwd, _filter_grad_bwd)


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
