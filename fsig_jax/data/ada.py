"""ADA as CDC ran it: rosinality's non-leaking augmentation and its adaptive p, in JAX.

The "TGAN+ADA" row of CDC / DCL / RICK / AdAM is CDC's train.py with
`--augment` (Karras et al., "Training Generative Adversarial Networks with
Limited Data", NeurIPS 2020, as ported by rosinality). Official code:
utkarshojha/few-shot-gan-adaptation (snapshot 5617920) `train.py` and its own
copy of `non_leaking.py`, an older rosinality/stylegan2-pytorch version than
rosinality's HEAD (bef283a), whose geometry and translation units differ. The
copy CDC imports (train.py:37 `from non_leaking import augment`) is what ran,
so it is what this file follows; images are NHWC in [-1, 1] (theirs NCHW).

Two parts, so that the application can be checked exactly against the torch code:

  sample_matrices(key, p, batch, height, width) -> (G (B,3,3), C (B,4,4))
      non_leaking.py `sample_affine` and `sample_color`, with the retry of
      `try_sample_affine_and_pad` (a batch whose padding would not fit is drawn again).
  apply(x, G, C) -> x'
      `random_apply_affine(img, p, G)` then `random_apply_color(img, p, C)`:
      reflect padding by `get_padding`, 2x upsampling with the SYM6 wavelet
      filter (`upfirdn2d(img_pad, kernel_flip, up=2)`), bilinear `grid_sample`
      (zeros outside, align_corners=False) on the affine grid, 2x downsampling
      (`upfirdn2d(img_affine, kernel, down=2)`), the crop; then the colour
      matrix (`apply_color`). Differentiable w.r.t. x (G's fakes go through it).

Transforms (`sample_affine`, non_leaking.py:151-207; `sample_color`, :210-241),
each applied per sample with probability p (`random_mat_apply`, :143-148) in
this order: x-flip; rotation by -pi/2 * {0, 3}; "integer" translation
round(u * size) / size, u ~ U(-0.125, 0.125), the same u for x and y;
isotropic scale lognormal(0, 0.2 ln 2); pre-rotation U(-pi, pi) and
anisotropic scale lognormal(0, 0.2 ln 2) and post-rotation, the rotations with
p_rot = 1 - sqrt(1 - p); fractional translation N(0, 0.125), the same for x
and y. Colour: brightness N(0, 0.2), contrast lognormal(0, 0.5 ln 2), luma
flip {0, 1}, hue rotation U(-pi, pi) about the grey axis, saturation
lognormal(0, ln 2). Translations are in the [-1, 1] grid's units (1 = half
the image), as in that version; these are its quirks, kept: the 90-degree
step draws from {0, 3} (not {0, 1, 2, 3}), and both translations move along
the diagonal.

The adaptive p (`ada_init`, `ada_update`): CDC train.py:179-183 and :239-258.
After each D step, the signs of D's real logits and their count (the logits'
leading dimension) are accumulated (:240-243); once more than 255 predictions
are accumulated (:245), r_t = sum of signs / count, and p moves by
sign(r_t - target) * (target / ada_length) * count (:248-256, `ada_aug_step *
n_pred`), clipped to [0, 1] (:257); the accumulator is reset (:258) and r_t
kept for the log (CDC logs it as "Rt"). `--augment_p` > 0 fixes p instead
(:181, :239). What counts as a prediction is whatever CDC's D returned: with its
patch D (`--augment` in run.sh's CDC command) every patch logit of the patch
map on patch steps, the image logit on anchor steps, divided by the batch size
only, so r_t there is not a fraction (kept: it is what ran; the engine asks the
D's owner, `Method.ada_signs`, methods/cdc.py). D's reals and fakes are
augmented with the current p (:218-220),
R1 is taken on those augmented reals (:263-269), and G's fakes with the p
after the update (:290-291).

Deviations (none in the arithmetic; only in how it is computed under jit):
  * Static shapes: instead of padding by the data-dependent amount, the image
    is reflect-padded once by the largest amount torch accepts (size - 1 per
    side) and upsampled; the bilinear taps read it at the dynamic image's
    positions and count as zero outside the dynamic image, which is what
    torch's smaller padded image gives. The grid uses the dynamic sizes, as
    torch does (traced integers).
  * The retry loop of `try_sample_affine_and_pad` is a `lax.while_loop` on
    fresh keys, capped at MAX_TRIES draws; a batch that never fits (tiny
    images at high p) is left untransformed (G = identity).
  * The random numbers are JAX's, not torch's: the same distributions.
Note: as in that code, apply(x, I, I) is not x: the wavelet up/downsampling and
its grid (sample r of the 2x image reads position r * h2 / (h2 - 1) - 1/2, h2 =
2 Hp - 11 for the padded size Hp: a stretch and a half-sample shift) shift and
blur the image slightly, also at p = 0 (CDC augments at every step with
--augment, from p = 0); tests/test_ada.py checks it against that code.
rosinality's later rewrite (HEAD) computes the geometry differently.
"""
import math
from typing import Tuple

import jax
import jax.numpy as jnp

from fsig_jax.errors import ConfigError

# non_leaking.py:9-22, the Symlet-6 low-pass filter used for up- and downsampling.
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)
PAD_K = (len(SYM6) + 1) // 2  # random_apply_affine: pad_k = (len_k + 1) // 2
MAX_TRIES = 1000  # retries of try_sample_affine_and_pad (torch: unbounded)
POLICY = 'ada'  # hparams.augment value that selects this augmentation
ADA_MIN_PREDS = 256  # train.py:245 `if ada_augment[1] > 255`
# train.py argparse (:480-484): --augment, --augment_p 0.0, --ada_target 0.6, --ada_length 500k.
ADA_TARGET = 0.6
ADA_LENGTH = 500 * 1000

_AXIS = 1 / math.sqrt(3)  # sample_color: the grey axis (1, 1, 1) / sqrt(3)


# ------------------------------------------------------------------ matrices


def _eye(n: int, batch: int) -> jax.Array:
  return jnp.broadcast_to(jnp.eye(n, dtype=jnp.float32), (batch, n, n))


def translate_mat(t_x, t_y):
  """non_leaking.py `translate_mat`."""
  return _eye(3, t_x.shape[0]).at[:, 0, 2].set(t_x).at[:, 1, 2].set(t_y)


def rotate_mat(theta):
  """non_leaking.py `rotate_mat`: [[cos, -sin], [sin, cos]]."""
  c, s = jnp.cos(theta), jnp.sin(theta)
  return (_eye(3, theta.shape[0]).at[:, 0, 0].set(c).at[:, 0, 1].set(-s)
          .at[:, 1, 0].set(s).at[:, 1, 1].set(c))


def scale_mat(s_x, s_y):
  """non_leaking.py `scale_mat`."""
  return _eye(3, s_x.shape[0]).at[:, 0, 0].set(s_x).at[:, 1, 1].set(s_y)


def translate3d_mat(t):
  """non_leaking.py `translate3d_mat(t, t, t)` (brightness)."""
  return _eye(4, t.shape[0]).at[:, :3, 3].set(t[:, None])


def scale3d_mat(s):
  """non_leaking.py `scale3d_mat(s, s, s)` (contrast)."""
  return _eye(4, s.shape[0]).at[:, 0, 0].set(s).at[:, 1, 1].set(s).at[:, 2, 2].set(s)


def rotate3d_mat(theta):
  """non_leaking.py `rotate3d_mat` about the grey axis (Rodrigues' formula)."""
  u = _AXIS
  cross = jnp.array([(0, -u, u), (u, 0, -u), (-u, u, 0)], jnp.float32)
  outer = jnp.full((3, 3), u * u, jnp.float32)
  c, s = jnp.cos(theta)[:, None, None], jnp.sin(theta)[:, None, None]
  rot = c * jnp.eye(3) + s * cross + (1 - c) * outer
  return _eye(4, theta.shape[0]).at[:, :3, :3].set(rot)


def _grey_outer():
  axis = jnp.array([_AXIS, _AXIS, _AXIS, 0.0], jnp.float32)
  return jnp.outer(axis, axis)


def luma_flip_mat(i):
  """non_leaking.py `luma_flip_mat`: I - 2 a a^T * i."""
  return _eye(4, i.shape[0]) - 2 * _grey_outer() * i[:, None, None]


def saturation_mat(s):
  """non_leaking.py `saturation_mat`: a a^T + (I - a a^T) * s."""
  outer = _grey_outer()
  return outer + (jnp.eye(4) - outer) * s[:, None, None]


def _random_apply(key, p, transform, prev):
  """non_leaking.py `random_mat_apply`: each sample takes `transform` with probability p."""
  n = transform.shape[0]
  select = jax.random.bernoulli(key, p, (n,)).astype(jnp.float32)[:, None, None]
  eye = _eye(transform.shape[1], n)
  return (select * transform + (1 - select) * eye) @ prev


def _lognormal(key, n, std):
  return jnp.exp(std * jax.random.normal(key, (n,)))


def _category(key, n, categories):
  return jnp.asarray(categories, jnp.float32)[jax.random.randint(key, (n,), 0, len(categories))]


def sample_affine(key, p, batch: int, height: int, width: int) -> jax.Array:
  """non_leaking.py `sample_affine` (:151-207): (B, 3, 3) in the [-1, 1] grid's units."""
  k = iter(jax.random.split(key, 16))
  p = jnp.asarray(p, jnp.float32)
  g = _eye(3, batch)
  # flip
  param = _category(next(k), batch, (0, 1))
  g = _random_apply(next(k), p, scale_mat(1 - 2.0 * param, jnp.ones(batch)), g)
  # 90 rotate (categories (0, 3), as there)
  param = _category(next(k), batch, (0, 3))
  g = _random_apply(next(k), p, rotate_mat(-math.pi / 2 * param), g)
  # integer translate: one u for both axes
  param = jax.random.uniform(next(k), (batch,), minval=-0.125, maxval=0.125)
  g = _random_apply(next(k), p, translate_mat(jnp.round(param * width) / width,
                                              jnp.round(param * height) / height), g)
  # isotropic scale
  param = _lognormal(next(k), batch, 0.2 * math.log(2))
  g = _random_apply(next(k), p, scale_mat(param, param), g)
  p_rot = 1 - jnp.sqrt(1 - p)
  # pre-rotate
  param = jax.random.uniform(next(k), (batch,), minval=-math.pi, maxval=math.pi)
  g = _random_apply(next(k), p_rot, rotate_mat(-param), g)
  # anisotropic scale
  param = _lognormal(next(k), batch, 0.2 * math.log(2))
  g = _random_apply(next(k), p, scale_mat(param, 1 / param), g)
  # post-rotate
  param = jax.random.uniform(next(k), (batch,), minval=-math.pi, maxval=math.pi)
  g = _random_apply(next(k), p_rot, rotate_mat(-param), g)
  # fractional translate: one draw for both axes
  param = 0.125 * jax.random.normal(next(k), (batch,))
  return _random_apply(next(k), p, translate_mat(param, param), g)


def sample_color(key, p, batch: int) -> jax.Array:
  """non_leaking.py `sample_color` (:210-241): (B, 4, 4) acting on (r, g, b, 1)."""
  k = iter(jax.random.split(key, 10))
  p = jnp.asarray(p, jnp.float32)
  c = _eye(4, batch)
  c = _random_apply(next(k), p, translate3d_mat(0.2 * jax.random.normal(next(k), (batch,))), c)
  c = _random_apply(next(k), p, scale3d_mat(_lognormal(next(k), batch, 0.5 * math.log(2))), c)
  c = _random_apply(next(k), p, luma_flip_mat(_category(next(k), batch, (0, 1))), c)
  c = _random_apply(next(k), p, rotate3d_mat(
      jax.random.uniform(next(k), (batch,), minval=-math.pi, maxval=math.pi)), c)
  return _random_apply(next(k), p, saturation_mat(_lognormal(next(k), batch, math.log(2))), c)


def padding(g_inv: jax.Array, height: int, width: int) -> jax.Array:
  """non_leaking.py `get_padding(torch.inverse(G), h, w)` (:259-285): int32
  (pad_x1, pad_x2, pad_y1, pad_y2), the batch's largest, in pixels x 2 of overhang."""
  corners = jnp.array([(-1.0, -1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, 1)], jnp.float32)
  extreme = g_inv[:, :2, :] @ corners.T  # (B, 2, 4)
  size = jnp.array([width, height], jnp.float32)
  low = jnp.ceil(jnp.abs(jnp.minimum((extreme.min(-1) + 1) * size, 0))).max(0)
  high = jnp.ceil(jnp.maximum(extreme.max(-1) * size - size, 0)).max(0)
  low, high = low.astype(jnp.int32), high.astype(jnp.int32)
  return jnp.stack([low[0], high[0], low[1], high[1]])


def fits(pads: jax.Array, height: int, width: int) -> jax.Array:
  """Whether torch's reflect padding by pads + PAD_K is legal (each side < the size),
  the condition `try_sample_affine_and_pad` retries on."""
  limit = jnp.array([width, width, height, height])
  return jnp.all(pads + PAD_K < limit)


def sample_matrices(key, p, batch: int, height: int, width: int) -> Tuple[jax.Array, jax.Array]:
  """(G, C) for a batch: `try_sample_affine_and_pad`'s draw-until-it-fits, then the colour.

  p may be traced. With p = 0 both are identities exactly."""
  k_aff, k_col = jax.random.split(key)
  ident = _eye(3, batch)

  def draw(i):
    g = sample_affine(jax.random.fold_in(k_aff, i), p, batch, height, width)
    return g, fits(padding(jnp.linalg.inv(g), height, width), height, width)

  def cond(carry):
    i, _, ok = carry
    return (~ok) & (i < MAX_TRIES)

  def body(carry):
    i, _, _ = carry
    g, ok = draw(i + 1)
    return i + 1, g, ok

  g0, ok0 = draw(0)
  _, g, ok = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), g0, ok0))
  g = jnp.where(ok, g, ident)
  return g, sample_color(k_col, p, batch)


# ------------------------------------------------------------------ application


def _take(x, start: int, size: int, axis: int):
  return jax.lax.slice_in_dim(x, start, start + size, axis=axis)


def _upsample_1d(x, axis: int):
  """upfirdn2d(x, kernel_flip, up=2) along `axis` (separably; its 2D kernel is the
  outer product): out[i] = sum_a z[i + a] SYM6[a] for z = x zero-interleaved 2x (with a
  trailing zero), 'valid', so 2n - 11 samples from n. Computed polyphase, the even
  outputs from SYM6's even taps and the odd ones from its odd taps."""
  n, k = x.shape[axis], len(SYM6)
  even = sum(SYM6[2 * j] * _take(x, j, n - k // 2 + 1, axis) for j in range(k // 2))
  odd = sum(SYM6[2 * j + 1] * _take(x, j + 1, n - k // 2, axis) for j in range(k // 2))
  pairs = jnp.stack([_take(even, 0, n - k // 2, axis), odd], axis=axis + 1)
  shape = list(x.shape)
  shape[axis] = 2 * (n - k // 2)
  return jnp.concatenate([pairs.reshape(shape), _take(even, n - k // 2, 1, axis)], axis=axis)


def _downsample_1d(x, axis: int):
  """upfirdn2d(x, kernel, down=2) along `axis`: the correlation with SYM6 reversed,
  'valid', every second sample from the first."""
  n, k = x.shape[axis], len(SYM6)
  size = (n - k) // 2 + 1
  flip = SYM6[::-1]
  return sum(flip[a] * jax.lax.slice_in_dim(x, a, a + 2 * (size - 1) + 1, stride=2, axis=axis)
             for a in range(k))


def _linspace(start, end, steps, idx):
  """torch.linspace(start, end, steps)[idx], as ATen computes it (from each end)."""
  step = (end - start) / (steps - 1).astype(jnp.float32)
  idx_f = idx.astype(jnp.float32)
  return jnp.where(idx < steps // 2, start + step * idx_f,
                   end - step * (steps - 1 - idx).astype(jnp.float32))


def apply_affine(x: jax.Array, g: jax.Array) -> jax.Array:
  """non_leaking.py `random_apply_affine(img, p, G)` (:316-371) for NHWC x, G (B, 3, 3)."""
  b, h, w, _ = x.shape
  if min(h, w) <= PAD_K:
    raise ConfigError(f'ADA needs images larger than {PAD_K} px (its filter padding); '
                      f'got {h}x{w}: use DiffAugment (hparams.augment=POLICY) or no augment')
  dtype = x.dtype
  x = x.astype(jnp.float32)
  g_inv = jnp.linalg.inv(g.astype(jnp.float32))
  pads = padding(g_inv, h, w)
  # A G that does not fit (only possible when passed in) uses the largest legal padding.
  pads = jnp.minimum(pads, jnp.array([w, w, h, h]) - 1 - PAD_K)
  px1, px2, py1, py2 = pads[0], pads[1], pads[2], pads[3]

  # The canvas: reflect-padded by the most torch allows; upsampled as torch's padded image.
  ty, tx = h - 1, w - 1
  canvas = jnp.pad(x, ((0, 0), (ty, ty), (tx, tx), (0, 0)), mode='reflect')
  up = _upsample_1d(_upsample_1d(canvas, 1), 2)
  # torch's img_2x[i] is up[i + 2 * off]; its size is 2 * Hp - 11.
  off_y, off_x = 2 * (ty - py1 - PAD_K), 2 * (tx - px1 - PAD_K)
  hp_, wp_ = h + py1 + py2 + 2 * PAD_K, w + px1 + px2 + 2 * PAD_K
  h2, w2 = 2 * hp_ - (len(SYM6) - 1), 2 * wp_ - (len(SYM6) - 1)
  h_p, w_p = hp_ - len(SYM6) + 1, wp_ - len(SYM6) + 1
  f32 = lambda v: v.astype(jnp.float32)  # noqa: E731

  # The rows / columns of torch's img_affine that the crop keeps after downsampling.
  n_rows, n_cols = 2 * h + len(SYM6) - 2, 2 * w + len(SYM6) - 2
  rows = 2 * py1 + jnp.arange(n_rows)
  cols = 2 * px1 + jnp.arange(n_cols)
  gy = _linspace(-2 * f32(py1) / h - 1, 2 * f32(h_p - py1) / h - 1, h2, rows)
  gx = _linspace(-2 * f32(px1) / w - 1, 2 * f32(w_p - px1) / w - 1, w2, cols)
  gx, gy = jnp.broadcast_to(gx[None, :], (n_rows, n_cols)), jnp.broadcast_to(gy[:, None],
                                                                               (n_rows, n_cols))
  m = g_inv[:, :2, :]  # affine_grid(grid, inverse(G)[:, :2, :])
  ax = m[:, 0, 0, None, None] * gx + m[:, 0, 1, None, None] * gy + m[:, 0, 2, None, None]
  ay = m[:, 1, 0, None, None] * gx + m[:, 1, 1, None, None] * gy + m[:, 1, 2, None, None]
  ax = ax * (w / f32(w_p)) + (f32(w + 2 * px1) / f32(w_p) - 1)
  ay = ay * (h / f32(h_p)) + (f32(h + 2 * py1) / f32(h_p) - 1)
  # grid_sample, bilinear, align_corners=False, zeros outside img_2x.
  ix = ((ax + 1) * f32(w2) - 1) / 2
  iy = ((ay + 1) * f32(h2) - 1) / 2
  x0, y0 = jnp.floor(ix), jnp.floor(iy)
  wx1, wy1 = ix - x0, iy - y0
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)

  def tap(img, yi, xi):
    ok = (yi >= 0) & (yi < h2) & (xi >= 0) & (xi < w2)
    yc = jnp.clip(yi + off_y, 0, img.shape[0] - 1)
    xc = jnp.clip(xi + off_x, 0, img.shape[1] - 1)
    return img[yc, xc] * ok[..., None]

  def sample(img, x0, y0, wx1, wy1):
    wx1, wy1 = wx1[..., None], wy1[..., None]
    return ((1 - wy1) * ((1 - wx1) * tap(img, y0, x0) + wx1 * tap(img, y0, x0 + 1))
            + wy1 * ((1 - wx1) * tap(img, y0 + 1, x0) + wx1 * tap(img, y0 + 1, x0 + 1)))

  affine = jax.vmap(sample)(up, x0, y0, wx1, wy1)
  out = _downsample_1d(_downsample_1d(affine, 1), 2)
  return out.astype(dtype)


def apply_color(x: jax.Array, c: jax.Array) -> jax.Array:
  """non_leaking.py `apply_color` (:374-382): x @ C[:3, :3]^T + C[:3, 3] per sample."""
  c = c.astype(x.dtype)
  return jnp.einsum('bhwj,bij->bhwi', x, c[:, :3, :3]) + c[:, None, None, :3, 3]


def apply(x: jax.Array, g: jax.Array, c: jax.Array) -> jax.Array:
  """non_leaking.py `augment(img, p, (G, C))` (:394-398): the affine, then the colour."""
  return apply_color(apply_affine(x, g), c)


def augment(x: jax.Array, key: jax.Array, p) -> jax.Array:
  """non_leaking.py `augment(img, p)`: fresh matrices from `key` at probability p."""
  b, h, w, _ = x.shape
  g, c = sample_matrices(key, p, b, h, w)
  return apply(x, g, c)


# ------------------------------------------------------------------ the adaptive p


def ada_init(augment_p: float) -> dict:
  """The ADA state in the train state: p (train.py:181, `--augment_p` if > 0 else 0),
  the sign accumulator (:180 `ada_augment`, its two entries) and the last r_t (:183)."""
  return {'p': jnp.asarray(max(float(augment_p), 0.0), jnp.float32),
          'signs': jnp.zeros((), jnp.float32), 'n': jnp.zeros((), jnp.float32),
          'r_t': jnp.zeros((), jnp.float32)}


def ada_update(state: dict, signs, count: int, target: float = ADA_TARGET,
               length: int = ADA_LENGTH) -> dict:
  """CDC train.py:239-258 after one D step, given `signs` = torch
  `sign(real_pred).sum()` and `count` = `real_pred.shape[0]` of D's real
  predictions on the global batch (the engine: every logit's sign, or the
  method's `ada_signs`; CDC's patch D counts every patch, N of them each).
  The caller skips this for a fixed p (`--augment_p` > 0, :239)."""
  signs = state['signs'] + jnp.asarray(signs, jnp.float32)
  n = state['n'] + count
  due = n > ADA_MIN_PREDS - 1
  r_t = jnp.where(due, signs / jnp.maximum(n, 1), state['r_t'])
  step = jnp.where(r_t > target, 1.0, -1.0) * (target / length) * n
  p = jnp.where(due, jnp.clip(state['p'] + step, 0.0, 1.0), state['p'])
  zero = jnp.zeros((), jnp.float32)
  return {'p': p, 'signs': jnp.where(due, zero, signs), 'n': jnp.where(due, zero, n),
          'r_t': r_t}
