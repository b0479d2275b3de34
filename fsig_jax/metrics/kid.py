"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimator of MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3 (d = feature size), averaged over random subsets.
For one subset of m generated features x and m real features y:

    MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i,j} k(x_i, y_j)

Sampling and defaults (num_subsets=100, max_subset_size=1000, subsets drawn
without replacement, m = min(n_gen, n_real, max_subset_size)) follow
stylegan2-ada-pytorch's `metrics/kernel_inception_distance.py` (kid50k_full),
with an explicit `np.random.RandomState(seed)` instead of the global RNG.
"""
import numpy as np

from fsig_jax.metrics import features as features_lib

NUM_SUBSETS = 100  # stylegan2-ada-pytorch metric_main.kid50k_full.
MAX_SUBSET_SIZE = 1000  # Same; also Bińkowski et al.'s subset size.


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 between two equally sized (m, d) feature sets, cubic kernel."""
  m, d = x.shape
  a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
  b = (x @ y.T / d + 1) ** 3
  return float((a.sum() - np.trace(a)) / (m * (m - 1)) - 2.0 * b.sum() / (m * m))


def kid_subset_estimates(gen_features: np.ndarray, real_features: np.ndarray,
                         num_subsets: int = NUM_SUBSETS, max_subset_size: int = MAX_SUBSET_SIZE,
                         seed: int = 0) -> np.ndarray:
  """MMD^2_u on `num_subsets` random subset pairs -> (num_subsets,) float64.

  Raises:
    ValueError: when the feature sizes differ or fewer than 2 samples are given.
  """
  x_all = np.asarray(gen_features, np.float64)
  y_all = np.asarray(real_features, np.float64)
  if x_all.ndim != 2 or y_all.ndim != 2 or x_all.shape[1] != y_all.shape[1]:
    raise ValueError(f"KID needs (N, d) features of one size, got {x_all.shape} and {y_all.shape}.")
  m = min(len(x_all), len(y_all), max_subset_size)
  if m < 2:
    raise ValueError(f"KID needs at least 2 samples per set, got {len(x_all)} generated "
                     f"and {len(y_all)} real.")
  rng = np.random.RandomState(seed)
  out = np.empty(num_subsets)
  for s in range(num_subsets):
    x = x_all[rng.choice(len(x_all), m, replace=False)]
    y = y_all[rng.choice(len(y_all), m, replace=False)]
    out[s] = polynomial_mmd2_unbiased(x, y)
  return out


def kernel_inception_distance(gen_features: np.ndarray, real_features: np.ndarray,
                              num_subsets: int = NUM_SUBSETS,
                              max_subset_size: int = MAX_SUBSET_SIZE, seed: int = 0) -> float:
  """KID: the mean of `kid_subset_estimates` (report it under `kid_label(feature_name)`)."""
  return float(np.mean(kid_subset_estimates(gen_features, real_features, num_subsets,
                                            max_subset_size, seed)))


def kid_label(feature_name: str) -> str:
  """Report name of a KID on `feature_name` features: "KID", or "KID-VGG" for VGG16."""
  return features_lib.metric_label(feature_name, "KID")
