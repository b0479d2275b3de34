"""Fréchet distance, FeatureStats and the statistics cache."""
import os

import numpy as np
import pytest

from fsig_jax.metrics import fid


def _stats(mean, cov, name="vgg16-lpips", count=100):
  return fid.FeatureStats(mean=np.asarray(mean, np.float64), cov=np.asarray(cov, np.float64),
                          count=count, feature_name=name)


def test_diagonal_gaussians_closed_form():
  rng = np.random.RandomState(0)
  mu1, mu2 = rng.randn(6), rng.randn(6)
  s1, s2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
  got = fid.frechet_distance(_stats(mu1, np.diag(s1)), _stats(mu2, np.diag(s2)))
  np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_shared_full_covariance_leaves_mean_term():
  rng = np.random.RandomState(1)
  a = rng.randn(5, 5)
  cov = a @ a.T + 0.1 * np.eye(5)
  mu1, mu2 = rng.randn(5), rng.randn(5)
  got = fid.frechet_distance(_stats(mu1, cov), _stats(mu2, cov))
  np.testing.assert_allclose(got, np.sum((mu1 - mu2) ** 2), atol=1e-8)


def test_identical_stats_give_zero():
  feats = np.random.RandomState(2).randn(200, 16)
  s = fid.FeatureStats.from_features(feats, "vgg16-lpips")
  assert abs(fid.frechet_distance(s, s)) < 1e-8
  np.testing.assert_allclose(s.cov, np.cov(feats, rowvar=False))
  assert s.count == 200


def test_singular_covariance_stays_finite():
  rng = np.random.RandomState(3)
  a = fid.FeatureStats.from_features(rng.randn(5, 32), "vgg16-lpips")  # rank 4 covariances.
  b = fid.FeatureStats.from_features(rng.randn(5, 32) + 0.5, "vgg16-lpips")
  d = fid.frechet_distance(a, b)
  assert np.isfinite(d) and d > 0


def test_too_few_samples_names_the_count():
  with pytest.raises(ValueError, match="at least 2 samples, got 1"):
    fid.FeatureStats.from_features(np.ones((1, 8)), "vgg16-lpips")
  with pytest.raises(ValueError, match="got 1"):
    fid.frechet_distance(_stats(np.zeros(2), np.eye(2), count=1), _stats(np.zeros(2), np.eye(2)))


def test_mismatched_feature_networks_raise():
  with pytest.raises(ValueError, match="different feature networks"):
    fid.frechet_distance(_stats(np.zeros(2), np.eye(2)),
                         _stats(np.zeros(2), np.eye(2), name="inception-v3-fid-2015-12-05"))


def test_labels_keep_vgg_apart_from_inception():
  assert fid.fid(_stats(np.zeros(2), np.eye(2)), _stats(np.ones(2), np.eye(2))) == {"FID-VGG": 2.0}
  inc = _stats(np.zeros(2), np.eye(2), name="inception-v3-fid-2015-12-05")
  assert inc.label == "FID"


def test_cache_roundtrip_and_refusals(tmp_path):
  files = []
  for i in range(3):
    p = tmp_path / "data" / f"{i}.jpg"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(b"x" * (i + 1))
    files.append(str(p))
  fp = fid.dataset_fingerprint(files)
  assert fp == fid.dataset_fingerprint(reversed(files))
  key = fid.stats_cache_key("vgg16-lpips", fp, 64)
  path = str(tmp_path / "cache" / "stats.npz")

  calls = []
  def compute():
    calls.append(1)
    return np.random.RandomState(4).randn(10, 3)
  s1 = fid.cached_stats(path, feature_name="vgg16-lpips", cache_key=key, compute_features=compute)
  s2 = fid.cached_stats(path, feature_name="vgg16-lpips", cache_key=key, compute_features=compute)
  assert len(calls) == 1 and s2.count == 10 and s2.feature_name == "vgg16-lpips"
  np.testing.assert_array_equal(s1.mean, s2.mean)
  np.testing.assert_array_equal(s1.cov, s2.cov)

  with pytest.raises(ValueError, match="feature network 'vgg16-lpips'"):
    fid.FeatureStats.load(path, feature_name="inception-v3-fid-2015-12-05", cache_key=key)
  with pytest.raises(ValueError, match="different data or resolution"):
    other_key = fid.stats_cache_key("vgg16-lpips", fp, 128)
    fid.FeatureStats.load(path, feature_name="vgg16-lpips", cache_key=other_key)

  os.utime(files[0], ns=(1, 1))  # A touched file changes the fingerprint.
  assert fid.dataset_fingerprint(files) != fp
