"""Intra-cluster LPIPS, the diversity metric of CDC (Ojha et al. 2021, Sec. 4.2).

Protocol (paper Sec. 4.2 and the official `feat_cluster.py`,
github.com/utkarshojha/few-shot-gan-adaptation):
  1. assign every generated sample to the training image (cluster center) with
     the lowest LPIPS distance (ties -> the lower center index);
  2. per cluster, keep at most `max_cluster_size` = 50 members (CDC's
     `cluster_size = 50`, a random subset; here drawn with an explicit seed) and
     average LPIPS over all pairs i < j of them;
  3. report the mean and the standard deviation of the per-cluster averages.
LPIPS is `lpips.LPIPS(net='vgg')`, v0.1, as in `feat_cluster.py`; CDC did not
release its assignment code, so step 1 uses the same network (as the
re-implementations in follow-up few-shot papers do).

Small clusters: in `feat_cluster.py` a cluster with fewer than 2 members has
no pair, its `dists.mean()` is NaN, and the final mean/std skip NaN clusters
(`avg_dist[~torch.isnan(avg_dist)]`); we do the same, and the std is torch's
default unbiased one (ddof=1) over the remaining clusters, NaN if only one is left.

Images are compared at the resolution they are given in (CDC's images were
256 px, where its `Resize([256, 256])` is the identity). Each image runs through
the VGG trunk once; pair distances reuse the cached features, so 1000 samples
x 10 centers costs ~1000 + 10 + 500 trunk passes. Feature memory per cluster is
about 50 x 2 MB at 64 px (x 16 at 256 px).
"""
import dataclasses
from typing import Optional

import jax.numpy as jnp
import numpy as np

from fsig_jax.metrics import lpips as lpips_lib

MAX_CLUSTER_SIZE = 50  # CDC feat_cluster.py: cluster_size = 50.
DEFAULT_NET = "vgg"  # CDC feat_cluster.py: lpips.LPIPS(net='vgg').


@dataclasses.dataclass(frozen=True)
class IntraLPIPSResult:
  """Intra-cluster LPIPS: mean/std over clusters plus the per-cluster details.

  Attributes:
    mean: mean of the per-cluster averages, NaN clusters skipped.
    std: unbiased std of the same (NaN when fewer than two clusters count).
    per_cluster: (K,) average pairwise LPIPS per cluster, NaN if < 2 members.
    cluster_sizes: (K,) members assigned to each center (before the size cap).
    assignments: (N,) index of the center each sample was assigned to.
  """
  mean: float
  std: float
  per_cluster: np.ndarray
  cluster_sizes: np.ndarray
  assignments: np.ndarray


def _padded_batches(images: np.ndarray, batch_size: int):
  """Yields (batch padded to batch_size, real count) so each jit shape compiles once."""
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    n = len(chunk)
    if n < batch_size:
      chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:], chunk.dtype)])
    yield jnp.asarray(chunk), n


def _features(images: np.ndarray, net: str, batch_size: int):
  """LPIPS features of all images, concatenated per layer (a tuple of 5 numpy arrays).

  Host (numpy) arrays: the slicing and pair gathers below are then plain numpy
  indexing instead of eagerly dispatched XLA ops per layer and batch (the same
  numbers, ~15% less time on CPU).
  """
  parts = [tuple(np.asarray(f)[:n] for f in lpips_lib.lpips_features(batch, net))
           for batch, n in _padded_batches(images, batch_size)]
  return tuple(np.concatenate(layer) for layer in zip(*parts))


def lpips_to_centers(samples, centers, net: str = DEFAULT_NET, batch_size: int = 16) -> np.ndarray:
  """LPIPS from every sample to every center -> (N, K) float32."""
  samples, centers = np.asarray(samples, np.float32), np.asarray(centers, np.float32)
  if samples.ndim != 4 or samples.shape[1:] != centers.shape[1:]:
    raise ValueError(f"Samples {samples.shape} and centers {centers.shape} must be NHWC "
                     "batches of one image size.")
  center_feats = _features(centers, net, batch_size)
  out = []
  for batch, n in _padded_batches(samples, batch_size):
    feats = lpips_lib.lpips_features(batch, net)
    cols = [lpips_lib.lpips_from_features(feats, tuple(f[k:k + 1] for f in center_feats), net)
            for k in range(len(centers))]
    out.append(np.stack([np.asarray(c) for c in cols], axis=1)[:n])
  return np.concatenate(out)


def mean_pairwise_lpips(images, net: str = DEFAULT_NET, batch_size: int = 16) -> float:
  """Average LPIPS over all pairs i < j of `images` (NaN when fewer than 2)."""
  images = np.asarray(images, np.float32)
  m = len(images)
  if m < 2:
    return float("nan")
  feats = _features(images, net, batch_size)
  rows, cols = np.triu_indices(m, k=1)
  total = 0.0
  for start in range(0, len(rows), batch_size):
    i, j = rows[start:start + batch_size], cols[start:start + batch_size]
    n = len(i)
    i, j = np.pad(i, (0, batch_size - n)), np.pad(j, (0, batch_size - n))  # Fixed shape for jit.
    d = lpips_lib.lpips_from_features(tuple(f[i] for f in feats), tuple(f[j] for f in feats), net)
    total += float(np.sum(np.asarray(d, np.float64)[:n]))
  return total / len(rows)


def intra_cluster_lpips(samples, centers, net: str = DEFAULT_NET,
                        max_cluster_size: Optional[int] = MAX_CLUSTER_SIZE, seed: int = 0,
                        batch_size: int = 16) -> IntraLPIPSResult:
  """CDC's intra-cluster LPIPS of generated `samples` around training images `centers`.

  Args:
    samples: (N, H, W, 3) generated images in [-1, 1] (CDC: N = 1000).
    centers: (K, H, W, 3) the few-shot training images in [-1, 1] (CDC: K = 10).
    net: LPIPS trunk, 'vgg' as in CDC or 'alex'.
    max_cluster_size: members kept per cluster (random subset); None keeps all.
    seed: seeds the subset choice (np.random.RandomState).
    batch_size: images (or pairs) per jitted call; bounds memory.

  Raises:
    ValueError: if no cluster has two members to compare.
  """
  samples = np.asarray(samples, np.float32)
  centers = np.asarray(centers, np.float32)
  assignments = np.argmin(lpips_to_centers(samples, centers, net, batch_size), axis=1)
  rng = np.random.RandomState(seed)
  per_cluster = np.full(len(centers), np.nan)
  sizes = np.bincount(assignments, minlength=len(centers))
  for k in range(len(centers)):
    members = np.flatnonzero(assignments == k)
    if max_cluster_size is not None and len(members) > max_cluster_size:
      members = np.sort(rng.choice(members, max_cluster_size, replace=False))
    per_cluster[k] = mean_pairwise_lpips(samples[members], net, batch_size)
  valid = per_cluster[~np.isnan(per_cluster)]
  if not len(valid):
    raise ValueError(f"No cluster has 2 members (cluster sizes {sizes.tolist()}); "
                     "generate more samples.")
  std = float(np.std(valid, ddof=1)) if len(valid) > 1 else float("nan")
  return IntraLPIPSResult(mean=float(np.mean(valid)), std=std, per_cluster=per_cluster,
                          cluster_sizes=sizes, assignments=assignments)
