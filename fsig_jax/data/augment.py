"""DiffAugment in pure JAX: differentiable augmentation of real and fake images alike.

Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS 2020 (arXiv:2006.10738). A port of the official
mit-han-lab/data-efficient-gans `DiffAugment_pytorch.py` (the version with
`ratio` arguments), which works on NCHW; here images are NHWC in [-1, 1].
The policy 'color,translation,cutout' (the paper's recommended one) runs:

  brightness   x + (u - 0.5),                        u ~ U[0, 1) per sample
  saturation   (x - mean_c x) * 2u + mean_c x,       mean over channels
  contrast     (x - mean_hwc x) * (u + 0.5) + mean_hwc x, mean over the image
  translation  integer shifts in [-s, s], s = int(H * 0.125 + 0.5), zero fill
  cutout       zero a square of side int(H * 0.5 + 0.5) at a random center

Every random parameter is drawn per sample from the explicit `key` (split per
op). The pixel ops are differentiable w.r.t. x; translation and cutout move or
mask pixels by integer amounts, so their gradient is the same gather / mask.

Beyond the official code: `p`, the per-sample probability of applying each op
(1.0 = always, the official behaviour), so an ADA-style controller (Karras et
al., "Training Generative Adversarial Networks with Limited Data", NeurIPS
2020) can drive the strength later. p = 0 returns x unchanged.
"""
from typing import Callable, Dict, List, Tuple, Union

import jax
import jax.numpy as jnp

TRANSLATION_RATIO = 0.125  # Official rand_translation(x, ratio=0.125).
CUTOUT_RATIO = 0.5  # Official rand_cutout(x, ratio=0.5).
DEFAULT_POLICY = "color,translation,cutout"  # The paper's policy for few-shot / limited data.


# ------------------------------------------------------------------ deterministic ops


def brightness(x: jax.Array, shift: jax.Array) -> jax.Array:
  """x + shift per sample; shift (N,) is u - 0.5 in the official rand_brightness."""
  return x + shift.astype(x.dtype)[:, None, None, None]


def saturation(x: jax.Array, factor: jax.Array) -> jax.Array:
  """Scales each pixel's deviation from its channel mean by factor (N,) (official 2u)."""
  mean = jnp.mean(x, axis=3, keepdims=True)
  return (x - mean) * factor.astype(x.dtype)[:, None, None, None] + mean


def contrast(x: jax.Array, factor: jax.Array) -> jax.Array:
  """Scales the deviation from each image's mean (H, W, C) by factor (N,) (official u + 0.5)."""
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * factor.astype(x.dtype)[:, None, None, None] + mean


def translate(x: jax.Array, shift_h: jax.Array, shift_w: jax.Array) -> jax.Array:
  """out[n, i, j] = x[n, i + shift_h[n], j + shift_w[n]], zero outside the image.

  The official gather on a 1-pixel zero-padded image with clamped indices,
  which equals np.roll(x, (-shift_h, -shift_w)) with the wrapped rows and
  columns zeroed.
  """
  _, h, w, _ = x.shape

  def one(img, sh, sw):
    padded = jnp.pad(img, ((1, 1), (1, 1), (0, 0)))
    rows = jnp.clip(jnp.arange(h) + sh + 1, 0, h + 1)
    cols = jnp.clip(jnp.arange(w) + sw + 1, 0, w + 1)
    return padded[rows][:, cols]

  return jax.vmap(one)(x, shift_h.astype(jnp.int32), shift_w.astype(jnp.int32))


def cutout_size(height: int, width: int, ratio: float = CUTOUT_RATIO) -> Tuple[int, int]:
  """The official cutout square: int(size * ratio + 0.5) per side."""
  return int(height * ratio + 0.5), int(width * ratio + 0.5)


def cutout(x: jax.Array, offset_h: jax.Array, offset_w: jax.Array,
           ratio: float = CUTOUT_RATIO) -> jax.Array:
  """Zeros rows [o_h - s_h // 2, o_h - s_h // 2 + s_h) x the same for columns, per sample.

  (s_h, s_w) = `cutout_size`; the box is clipped at the image border, as the
  official clamped scatter (clamped indices only repeat rows already inside
  the box, so the two are equal).
  """
  _, h, w, _ = x.shape
  sh, sw = cutout_size(h, w, ratio)
  top = (offset_h.astype(jnp.int32) - sh // 2)[:, None]
  left = (offset_w.astype(jnp.int32) - sw // 2)[:, None]
  rows, cols = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
  in_rows = (rows >= top) & (rows < top + sh)  # (N, H)
  in_cols = (cols >= left) & (cols < left + sw)  # (N, W)
  keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
  return x * keep[..., None].astype(x.dtype)


# ------------------------------------------------------------------ random ops


def _rand_brightness(x, key):
  return brightness(x, jax.random.uniform(key, (x.shape[0],), x.dtype) - 0.5)


def _rand_saturation(x, key):
  return saturation(x, jax.random.uniform(key, (x.shape[0],), x.dtype) * 2)


def _rand_contrast(x, key):
  return contrast(x, jax.random.uniform(key, (x.shape[0],), x.dtype) + 0.5)


def _rand_translation(x, key, ratio=TRANSLATION_RATIO):
  n, h, w, _ = x.shape
  max_h, max_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
  kh, kw = jax.random.split(key)
  shift_h = jax.random.randint(kh, (n,), -max_h, max_h + 1)
  shift_w = jax.random.randint(kw, (n,), -max_w, max_w + 1)
  return translate(x, shift_h, shift_w)


def _rand_cutout(x, key, ratio=CUTOUT_RATIO):
  n, h, w, _ = x.shape
  sh, sw = cutout_size(h, w, ratio)
  kh, kw = jax.random.split(key)
  # Official range: randint(0, size + (1 - cutout % 2)).
  offset_h = jax.random.randint(kh, (n,), 0, h + (1 - sh % 2))
  offset_w = jax.random.randint(kw, (n,), 0, w + (1 - sw % 2))
  return cutout(x, offset_h, offset_w, ratio)


AUGMENT_FNS: Dict[str, List[Callable[[jax.Array, jax.Array], jax.Array]]] = {
    "color": [_rand_brightness, _rand_saturation, _rand_contrast],
    "translation": [_rand_translation],
    "cutout": [_rand_cutout],
}


def parse_policy(policy: str) -> List[str]:
  """Splits 'a,b' into op-group names; unknown names raise a ValueError listing the valid ones."""
  names = [p.strip() for p in policy.split(",") if p.strip()]
  unknown = [p for p in names if p not in AUGMENT_FNS]
  if unknown:
    raise ValueError(f"Unknown DiffAugment policy name(s) {unknown} in {policy!r}; valid "
                     f"names are {sorted(AUGMENT_FNS)} (comma-separated).")
  return names


def diff_augment(x: jax.Array, key: jax.Array, policy: str = DEFAULT_POLICY,
                 p: Union[float, jax.Array] = 1.0) -> jax.Array:
  """DiffAugment of an NHWC batch in [-1, 1] (Zhao et al. 2020), same shape and dtype.

  Jit-compatible with `policy` static (a Python string); differentiable w.r.t.
  x. All randomness comes from `key`, one subkey per op and per-sample
  parameters. Apply it, with independent keys, to both real and generated
  images before the discriminator, in D and G steps alike (the paper's rule).

  Args:
    x: (N, H, W, C) images.
    key: a jax PRNG key.
    policy: comma-separated groups of 'color', 'translation', 'cutout'; '' is
      the identity (as the official code).
    p: per-sample probability of applying each op (scalar, may be traced);
      1.0 is the official always-on behaviour, 0.0 the identity.

  Returns:
    The augmented batch.
  """
  fns = [fn for name in parse_policy(policy) for fn in AUGMENT_FNS[name]]
  always = isinstance(p, (int, float)) and p >= 1.0
  if isinstance(p, (int, float)) and p <= 0.0:
    return x
  for fn, op_key in zip(fns, jax.random.split(key, max(len(fns), 1))):
    if always:
      x = fn(x, op_key)
    else:
      fn_key, gate_key = jax.random.split(op_key)
      apply = jax.random.uniform(gate_key, (x.shape[0],)) < p
      x = jnp.where(apply[:, None, None, None], fn(x, fn_key), x)
  return x
