"""DiffAugment (Zhao et al. 2020) in JAX, checked op by op against numpy formulas."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsig_jax.data import augment


def _batch(n=4, size=16, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)), jnp.float32)


def test_shape_dtype_preserved():
  x = _batch()
  y = augment.diff_augment(x, jax.random.PRNGKey(0))
  assert y.shape == x.shape and y.dtype == x.dtype
  xb = x.astype(jnp.bfloat16)
  assert augment.diff_augment(xb, jax.random.PRNGKey(0)).dtype == jnp.bfloat16


def test_deterministic_per_key_and_jit_matches_eager():
  x = _batch()
  a = augment.diff_augment(x, jax.random.PRNGKey(1))
  b = augment.diff_augment(x, jax.random.PRNGKey(1))
  c = augment.diff_augment(x, jax.random.PRNGKey(2))
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.allclose(np.asarray(a), np.asarray(c))
  jitted = jax.jit(augment.diff_augment, static_argnames="policy")
  np.testing.assert_allclose(np.asarray(jitted(x, jax.random.PRNGKey(1))), np.asarray(a),
                             atol=1e-5)


def test_gradient_flows():
  x = _batch()
  g = jax.grad(lambda v: jnp.sum(augment.diff_augment(v, jax.random.PRNGKey(3))))(x)
  g = np.asarray(g)
  assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0


def test_p_zero_is_identity_and_p_can_be_traced():
  x = _batch(n=64, size=8)
  key = jax.random.PRNGKey(4)
  np.testing.assert_array_equal(np.asarray(augment.diff_augment(x, key, p=0.0)), np.asarray(x))
  f = jax.jit(lambda v, k, p: augment.diff_augment(v, k, "color", p))
  np.testing.assert_array_equal(np.asarray(f(x, key, jnp.float32(0.0))), np.asarray(x))
  half = np.asarray(f(x, key, jnp.float32(0.5)))
  unchanged = np.all(half == np.asarray(x), axis=(1, 2, 3))
  assert 0 < unchanged.sum() < len(unchanged)  # Each sample skips all 3 ops w.p. 1/8.


def test_empty_policy_is_identity_and_unknown_names_are_refused():
  x = _batch()
  np.testing.assert_array_equal(np.asarray(augment.diff_augment(x, jax.random.PRNGKey(0), "")),
                                np.asarray(x))
  with pytest.raises(ValueError, match="color.*cutout.*translation|valid names"):
    augment.diff_augment(x, jax.random.PRNGKey(0), "color,flip")


def test_color_ops_match_numpy_formulas():
  x = np.asarray(_batch(n=3, size=5))
  f = np.array([0.2, 1.3, 1.9], np.float32)
  np.testing.assert_allclose(np.asarray(augment.brightness(jnp.asarray(x), jnp.asarray(f - 0.5))),
                             x + (f - 0.5)[:, None, None, None], atol=1e-6)
  mean_c = x.mean(axis=3, keepdims=True)
  np.testing.assert_allclose(np.asarray(augment.saturation(jnp.asarray(x), jnp.asarray(f))),
                             (x - mean_c) * f[:, None, None, None] + mean_c, atol=1e-6)
  mean_img = x.mean(axis=(1, 2, 3), keepdims=True)
  np.testing.assert_allclose(np.asarray(augment.contrast(jnp.asarray(x), jnp.asarray(f))),
                             (x - mean_img) * f[:, None, None, None] + mean_img, atol=1e-6)


def test_random_color_factors_are_in_official_ranges():
  x = _batch(n=256, size=4)
  xn = np.asarray(x)
  b = np.asarray(augment._rand_brightness(x, jax.random.PRNGKey(5))) - xn
  assert np.allclose(b, b[:, :1, :1, :1], atol=1e-6)  # One shift per sample.
  assert b.min() >= -0.5 and b.max() < 0.5 and b.max() - b.min() > 0.8
  dev = xn - xn.mean(axis=3, keepdims=True)
  s = np.asarray(augment._rand_saturation(x, jax.random.PRNGKey(6)))
  ratio = (s - xn.mean(axis=3, keepdims=True))[:, 0, 0, 0] / dev[:, 0, 0, 0]
  assert ratio.min() >= -1e-4 and ratio.max() < 2.0 + 1e-4 and ratio.max() - ratio.min() > 1.6
  dev = xn - xn.mean(axis=(1, 2, 3), keepdims=True)
  c = np.asarray(augment._rand_contrast(x, jax.random.PRNGKey(7)))
  ratio = (c - xn.mean(axis=(1, 2, 3), keepdims=True))[:, 0, 0, 0] / dev[:, 0, 0, 0]
  assert ratio.min() >= 0.5 - 1e-4 and ratio.max() < 1.5 + 1e-4 and ratio.max() - ratio.min() > 0.8


def _roll_zero_fill(img, sh, sw):
  """out[i, j] = img[i + sh, j + sw], zero where that falls outside."""
  h, w = img.shape[:2]
  out = np.roll(img, (-sh, -sw), axis=(0, 1))
  if sh > 0:
    out[h - sh:] = 0
  elif sh < 0:
    out[:-sh] = 0
  if sw > 0:
    out[:, w - sw:] = 0
  elif sw < 0:
    out[:, :-sw] = 0
  return out


def test_translation_matches_roll_with_zero_fill():
  x = np.asarray(_batch(n=5, size=8)) + 2.0  # No zeros in the input.
  sh = np.array([0, 1, -1, 2, -3])
  sw = np.array([0, -2, 1, 3, 0])
  y = np.asarray(augment.translate(jnp.asarray(x), jnp.asarray(sh), jnp.asarray(sw)))
  for n in range(5):
    np.testing.assert_array_equal(y[n], _roll_zero_fill(x[n], sh[n], sw[n]))


def test_random_translation_stays_in_official_range():
  # 16 px: shifts in [-int(16 * 0.125 + 0.5), +] = [-2, 2]; a marker pixel reveals the shift.
  x = np.zeros((64, 16, 16, 1), np.float32)
  x[:, 8, 8] = 1.0
  y = np.asarray(augment._rand_translation(jnp.asarray(x), jax.random.PRNGKey(8)))
  pos = np.array([np.argwhere(im[..., 0] == 1.0)[0] for im in y])
  shifts = 8 - pos
  assert np.abs(shifts).max() == 2 and len({tuple(s) for s in shifts}) > 10


def _official_cutout_mask(h, w, oh, ow, ratio=0.5):
  """The official clamped-scatter mask of DiffAugment_pytorch.rand_cutout, in numpy."""
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  mask = np.ones((h, w), np.float32)
  rows = np.clip(np.arange(sh) + oh - sh // 2, 0, h - 1)
  cols = np.clip(np.arange(sw) + ow - sw // 2, 0, w - 1)
  mask[np.ix_(rows, cols)] = 0
  return mask


def test_cutout_zeros_a_square_of_the_stated_size():
  h = w = 8
  sh, sw = augment.cutout_size(h, w)
  assert (sh, sw) == (4, 4)
  x = jnp.ones((1, h, w, 3))
  y = np.asarray(augment.cutout(x, jnp.array([4]), jnp.array([3])))
  assert (y[..., 0] == 0).sum() == sh * sw
  np.testing.assert_array_equal(y[0, 2:6, 1:5], 0)
  # Every offset of the official range (border boxes are clipped) equals the official scatter.
  offsets = np.array([(a, b) for a in range(h + 1) for b in range(w + 1)])
  x = jnp.ones((len(offsets), h, w, 1))
  y = np.asarray(augment.cutout(x, jnp.asarray(offsets[:, 0]), jnp.asarray(offsets[:, 1])))
  for n, (a, b) in enumerate(offsets):
    np.testing.assert_array_equal(y[n, ..., 0], _official_cutout_mask(h, w, a, b))


def test_random_cutout_odd_size_box():
  x = jnp.ones((32, 7, 7, 3))  # Side int(3.5 + 0.5) = 4; offsets in [0, 7).
  y = np.asarray(augment._rand_cutout(x, jax.random.PRNGKey(9)))
  zeros = (y[..., 0] == 0).sum(axis=(1, 2))
  assert zeros.max() <= 16 and zeros.min() >= 4
