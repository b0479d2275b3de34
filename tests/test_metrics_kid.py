"""KID against a direct O(n^2) unbiased MMD^2."""
import numpy as np
import pytest

from fsig_jax.metrics import kid


def _direct_mmd2(x, y):
  m, d = x.shape
  k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
  return xx + yy - 2 * xy


def test_one_subset_matches_direct_mmd():
  rng = np.random.RandomState(0)
  x, y = rng.randn(12, 5), rng.randn(12, 5) + 0.3
  np.testing.assert_allclose(kid.polynomial_mmd2_unbiased(x, y), _direct_mmd2(x, y), rtol=1e-10)
  # All samples in one subset: the subset is a permutation, MMD is order-free.
  got = kid.kernel_inception_distance(x, y, num_subsets=1, max_subset_size=1000)
  np.testing.assert_allclose(got, _direct_mmd2(x, y), rtol=1e-10)


def test_subsets_follow_the_seeded_draws():
  rng = np.random.RandomState(1)
  gen, real = rng.randn(15, 4), rng.randn(11, 4)
  est = kid.kid_subset_estimates(gen, real, num_subsets=3, max_subset_size=6, seed=7)
  draws = np.random.RandomState(7)
  for s in range(3):
    x = gen[draws.choice(15, 6, replace=False)]
    y = real[draws.choice(11, 6, replace=False)]
    np.testing.assert_allclose(est[s], _direct_mmd2(x, y), rtol=1e-10)
  assert kid.kernel_inception_distance(gen, real, 3, 6, seed=7) == pytest.approx(est.mean())


def test_same_distribution_near_zero_shift_positive():
  rng = np.random.RandomState(2)
  a, b = rng.randn(300, 8), rng.randn(300, 8)
  same = kid.kernel_inception_distance(a, b, num_subsets=10, max_subset_size=100)
  shifted = kid.kernel_inception_distance(a, b + 1.0, num_subsets=10, max_subset_size=100)
  assert abs(same) < 0.05 < shifted


def test_errors_and_label():
  with pytest.raises(ValueError, match="at least 2 samples"):
    kid.kernel_inception_distance(np.ones((1, 3)), np.ones((5, 3)))
  with pytest.raises(ValueError, match="one size"):
    kid.kernel_inception_distance(np.ones((4, 3)), np.ones((4, 2)))
  assert kid.kid_label("vgg16-lpips") == "KID-VGG"
  assert kid.kid_label("inception-v3-fid-2015-12-05") == "KID"
