"""Fréchet distance between Gaussian feature statistics (FID, Heusel et al. 2017).

    FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

computed as pytorch-fid's `calculate_frechet_distance` (github.com/mseitzer/
pytorch-fid, src/pytorch_fid/fid_score.py): scipy's `sqrtm`, and when the
product is numerically singular (non-finite root) eps*I (eps=1e-6) is added to
both covariances; a complex root keeps its real part unless the diagonal's
imaginary part exceeds 1e-3. Covariances are `np.cov(rowvar=False)` (ddof=1).

Statistics carry the name of the feature network they came from, and their
on-disk cache carries a key (network + dataset fingerprint + resolution), so a
cache is never silently reused for another network or dataset.
"""
import dataclasses
import hashlib
import os
from typing import Callable, Dict, Iterable

import numpy as np
from scipy import linalg

from fsig_jax.metrics import features as features_lib
from fsig_jax.utils.files import write_atomic

_CACHE_FORMAT = 1
# The setting that chooses where caches go, named when one cannot be written.
_CACHE_SETTING = "the feature cache folder (config.eval.cache_dir, or --cache_dir)"


@dataclasses.dataclass(frozen=True)
class FeatureStats:
  """Mean (d,), covariance (d, d) and count of features from network `feature_name`."""
  mean: np.ndarray
  cov: np.ndarray
  count: int
  feature_name: str

  @classmethod
  def from_features(cls, features: np.ndarray, feature_name: str) -> "FeatureStats":
    """Gaussian statistics of (N, d) features, in float64; needs N >= 2."""
    feats = np.asarray(features, np.float64)
    if feats.ndim != 2:
      raise ValueError(f"Features must be (N, dim), got shape {feats.shape}.")
    _check_count(len(feats), feature_name)
    return cls(mean=feats.mean(axis=0), cov=np.cov(feats, rowvar=False), count=len(feats),
               feature_name=feature_name)

  @property
  def label(self) -> str:
    """How an FID on these statistics is reported ("FID" or "FID-VGG")."""
    return features_lib.metric_label(self.feature_name, "FID")

  def save(self, path: str, cache_key: str) -> None:
    """Writes an `.npz` holding the statistics and the `cache_key` they belong to."""
    write_atomic(path, lambda tmp: np.savez(
        tmp, mean=self.mean, cov=self.cov, count=np.int64(self.count),
        feature_name=np.str_(self.feature_name), cache_key=np.str_(cache_key),
        format=np.int64(_CACHE_FORMAT)), suffix=".tmp.npz", setting=_CACHE_SETTING)

  @classmethod
  def load(cls, path: str, *, feature_name: str, cache_key: str) -> "FeatureStats":
    """Reads statistics saved by `save`, refusing a cache made for anything else.

    Raises:
      ValueError: when the file was computed with another feature network or
        under another cache key (other data or resolution).
    """
    with np.load(path, allow_pickle=False) as data:
      _check_cache_entry(path, data, feature_name, cache_key)
      return cls(mean=data["mean"], cov=data["cov"], count=int(data["count"]),
                 feature_name=str(data["feature_name"]))


def _check_cache_entry(path: str, data, feature_name: str, cache_key: str) -> None:
  """Refuses an `.npz` cache written for another feature network or cache key."""
  stored_name, stored_key = str(data["feature_name"]), str(data["cache_key"])
  if stored_name != feature_name:
    raise ValueError(f"Feature-statistics cache {path} was computed with feature network "
                     f"{stored_name!r}, not {feature_name!r}; delete it or use another "
                     "cache path.")
  if stored_key != cache_key:
    raise ValueError(f"Feature-statistics cache {path} has key {stored_key!r}, expected "
                     f"{cache_key!r} (different data or resolution); delete it or use "
                     "another cache path.")


def load_stats_file(path: str, *, feature_name: str, resolution: int) -> FeatureStats:
  """Reads a statistics file written by `FeatureStats.save` for use as an FID reference.

  Unlike a cache lookup the data it came from is not known, so only the feature
  network and the resolution in its stored key are checked.

  Raises:
    ValueError: not such a file, another feature network, or another resolution.
  """
  try:
    with np.load(path, allow_pickle=False) as data:
      stored_key = str(data["cache_key"])
      stored_res = stored_key.rsplit("|", 1)[-1]
  except (OSError, KeyError, ValueError) as e:
    raise ValueError(f"{path} is not a feature-statistics file written by fsig-jax "
                     f"({type(e).__name__}: {e}).") from None
  if stored_res != f"{int(resolution)}px":
    raise ValueError(f"Feature-statistics file {path} was computed at {stored_res}, but the "
                     f"images to compare are {int(resolution)}px; use statistics of that "
                     "resolution.")
  return FeatureStats.load(path, feature_name=feature_name, cache_key=stored_key)


def _check_count(count: int, feature_name: str) -> None:
  if count < 2:
    raise ValueError(f"A covariance needs at least 2 samples, got {count} "
                     f"({feature_name} features).")


def dataset_fingerprint(paths: Iterable[str]) -> str:
  """SHA-256 (16 hex) of the sorted (relative name, size, mtime_ns) of dataset files.

  Names are taken relative to the files' common folder, so moving the folder
  keeps the fingerprint while adding, removing or rewriting a file changes it.
  """
  paths = [os.path.abspath(p) for p in paths]
  if not paths:
    raise ValueError("Cannot fingerprint an empty dataset (no files given).")
  root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
  h = hashlib.sha256()
  for p in sorted(paths):
    st = os.stat(p)
    h.update(f"{os.path.relpath(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
  return h.hexdigest()[:16]


def stats_cache_key(feature_name: str, fingerprint: str, resolution: int) -> str:
  """The key a statistics cache is stored and checked under."""
  return f"{feature_name}|{fingerprint}|{int(resolution)}px"


def cached_stats(path: str, *, feature_name: str, cache_key: str,
                 compute_features: Callable[[], np.ndarray]) -> FeatureStats:
  """Loads statistics from `path` (checking name and key), or computes and saves them."""
  if os.path.exists(path):
    return FeatureStats.load(path, feature_name=feature_name, cache_key=cache_key)
  stats = FeatureStats.from_features(compute_features(), feature_name)
  stats.save(path, cache_key)
  return stats


def cached_features(path: str, *, feature_name: str, cache_key: str,
                    compute_features: Callable[[], np.ndarray]) -> np.ndarray:
  """Like `cached_stats` for the (N, d) features themselves (KID needs them, not only stats)."""
  if os.path.exists(path):
    with np.load(path, allow_pickle=False) as data:
      _check_cache_entry(path, data, feature_name, cache_key)
      return np.asarray(data["features"], np.float32)
  feats = np.asarray(compute_features(), np.float32)
  write_atomic(path, lambda tmp: np.savez(
      tmp, features=feats, feature_name=np.str_(feature_name), cache_key=np.str_(cache_key),
      format=np.int64(_CACHE_FORMAT)), suffix=".tmp.npz", setting=_CACHE_SETTING)
  return feats


def frechet_distance(stats1: FeatureStats, stats2: FeatureStats, eps: float = 1e-6) -> float:
  """Fréchet distance between two FeatureStats of the same network (pytorch-fid recipe).

  Raises:
    ValueError: different feature networks or dimensions, fewer than 2 samples,
      or a square root with a large imaginary part.
  """
  if stats1.feature_name != stats2.feature_name:
    raise ValueError(f"Cannot compare statistics of different feature networks: "
                     f"{stats1.feature_name!r} vs {stats2.feature_name!r}.")
  for s in (stats1, stats2):
    _check_count(s.count, s.feature_name)
  mu1 = np.atleast_1d(stats1.mean).astype(np.float64)
  mu2 = np.atleast_1d(stats2.mean).astype(np.float64)
  s1 = np.atleast_2d(stats1.cov).astype(np.float64)
  s2 = np.atleast_2d(stats2.cov).astype(np.float64)
  if mu1.shape != mu2.shape or s1.shape != s2.shape:
    raise ValueError(f"Feature dimensions differ: {mu1.shape} vs {mu2.shape}.")
  diff = mu1 - mu2
  covmean = linalg.sqrtm(s1.dot(s2))
  if not np.isfinite(covmean).all():
    offset = np.eye(s1.shape[0]) * eps
    covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm(S1 S2).")
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid(stats1: FeatureStats, stats2: FeatureStats) -> Dict[str, float]:
  """{label: Fréchet distance}, labeled "FID" for Inception and "FID-VGG" for VGG16 features."""
  return {stats1.label: frechet_distance(stats1, stats2)}


def fid_from_features(feats1: np.ndarray, feats2: np.ndarray, feature_name: str,
                      eps: float = 1e-6) -> float:
  """Shorthand: Fréchet distance between two (N, d) feature arrays of one network."""
  return frechet_distance(FeatureStats.from_features(feats1, feature_name),
                          FeatureStats.from_features(feats2, feature_name), eps=eps)
