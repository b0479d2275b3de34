"""Image sets that generated images are compared with: ImageSource and as_source().

Split out of `evaluate` so every evaluation (adaptation runs, `launch/eval.py`,
`benchmarks/fsig_table.py`, and future trainers with their own defaults) reads
its reference and few-shot images the same way, with the same feature cache.

A source is a folder path, a 'derived:NAME:SUBSET' target (fsig_jax/data/targets.py),
'tfds:NAME[:SPLIT]', an NHWC array, a list of equally sized HWC arrays, or an
`.npz` statistics file written by the cache (FID only). All are loaded at one
resolution with the library's one loader (`data.images.load_images`). Features
and statistics are cached in `cache_dir` under a key of feature network +
dataset fingerprint + resolution (`fid.cached_stats`, `fid.cached_features`),
so a cache is never reused for other data, another resolution or network.
"""
import hashlib
import os
import pathlib
from typing import Any, Dict, Optional, Union

import numpy as np

from fsig_jax.data import targets
from fsig_jax.data.images import DataError, list_image_files, load_images
from fsig_jax.metrics import features as features_lib
from fsig_jax.metrics import fid as fid_lib

# Loaded images of sources up to this size are kept in memory between calls.
_MEMO_MAX_IMAGES = 256


def _sha16(*parts: Union[str, bytes]) -> str:
  h = hashlib.sha256()
  for p in parts:
    h.update(p if isinstance(p, bytes) else p.encode())
    h.update(b'\0')
  return h.hexdigest()[:16]


class ImageSource:
  """A set of images to compare with, loaded lazily at one resolution.

  Creating one checks cheaply that the data exists (a missing folder or
  derived target fails here, before any sampling) and fingerprints it for the
  feature cache; the images are read only when features are needed.
  """

  def __init__(self, spec: Any, resolution: int):
    self.spec, self.resolution = spec, int(resolution)
    self._images: Optional[np.ndarray] = None
    self._features: Dict[str, np.ndarray] = {}
    self.is_stats_file = isinstance(spec, (str, os.PathLike)) and str(spec).endswith('.npz')
    if self.is_stats_file:
      if not os.path.isfile(spec):
        raise DataError(f'Statistics file {spec} does not exist.')
      self.description, self.fingerprint, self.count = str(spec), None, None
    elif isinstance(spec, (str, os.PathLike)):
      spec = os.fspath(spec)
      if targets.is_derived(spec):
        files = targets.derived_files(spec)
        self.fingerprint = _sha16(spec, fid_lib.dataset_fingerprint(files))
      elif spec.startswith('tfds:'):
        files, self.fingerprint = None, _sha16(spec)
      else:
        files = list_image_files(pathlib.Path(spec))
        self.fingerprint = fid_lib.dataset_fingerprint(files)
      self.description = spec
      self.count = len(files) if files is not None else None
    else:
      self._images = _load(spec, self.resolution)
      self.description = f'array of {len(self._images)} images'
      self.fingerprint = _sha16(np.ascontiguousarray(self._images).tobytes())
      self.count = len(self._images)

  def images(self) -> np.ndarray:
    """(N, R, R, 3) float32 in [-1, 1]; small sets stay in memory once loaded."""
    if self.is_stats_file:
      raise ValueError(f'{self.spec} holds feature statistics, not images.')
    if self._images is not None:
      return self._images
    imgs = _load(self.spec, self.resolution)
    self.count = len(imgs)
    if len(imgs) <= _MEMO_MAX_IMAGES:
      self._images = imgs
    return imgs

  def _cache_path(self, cache_dir: Optional[str], extractor, kind: str) -> Optional[str]:
    if not cache_dir:
      return None
    return os.path.join(cache_dir, f'{extractor.name}_{self.fingerprint}_{self.resolution}px'
                                   f'_{kind}.npz')

  def _key(self, extractor) -> str:
    return fid_lib.stats_cache_key(extractor.name, self.fingerprint, self.resolution)

  def features(self, extractor: features_lib.FeatureExtractor, batch_size: int,
               cache_dir: Optional[str] = None) -> np.ndarray:
    """(N, dim) features of the images (cached on disk in cache_dir and in memory)."""
    if self.is_stats_file:
      raise ValueError(f'KID needs the reference features, but {self.spec} holds only their '
                       'mean and covariance: pass the reference images, or drop KID.')
    if extractor.name not in self._features:
      def compute():
        return features_lib.extract_features(extractor, self.images(), batch_size)
      path = self._cache_path(cache_dir, extractor, 'features')
      feats = compute() if path is None else fid_lib.cached_features(
          path, feature_name=extractor.name, cache_key=self._key(extractor),
          compute_features=compute)
      self._features[extractor.name] = feats
      self.count = len(feats)
    return self._features[extractor.name]

  def stats(self, extractor: features_lib.FeatureExtractor, batch_size: int,
            cache_dir: Optional[str] = None) -> fid_lib.FeatureStats:
    """Feature statistics (via `fid.cached_stats` when cache_dir is given)."""
    if self.is_stats_file:
      stats = fid_lib.load_stats_file(self.spec, feature_name=extractor.name,
                                      resolution=self.resolution)
    else:
      compute = lambda: self.features(extractor, batch_size, cache_dir)  # noqa: E731
      path = self._cache_path(cache_dir, extractor, 'stats')
      stats = (fid_lib.FeatureStats.from_features(compute(), extractor.name) if path is None
               else fid_lib.cached_stats(path, feature_name=extractor.name,
                                         cache_key=self._key(extractor),
                                         compute_features=compute))
    self.count = stats.count
    return stats


def _load(spec: Any, resolution: int) -> np.ndarray:
  if targets.is_derived(spec):
    return targets.load_derived(spec, resolution)
  if isinstance(spec, (list, tuple)):
    spec = features_lib.stack_images(spec)  # a clear error for mixed sizes
  return load_images(spec, resolution)


def as_source(spec: Any, resolution: int) -> Optional[ImageSource]:
  """`spec` as an ImageSource at `resolution` (None and '' stay None)."""
  if spec is None or (isinstance(spec, str) and not spec):
    return None
  if isinstance(spec, ImageSource):
    if spec.resolution != resolution:
      raise ValueError(f'Image source {spec.description} was prepared at {spec.resolution}px '
                       f'but the model generates {resolution}px images.')
    return spec
  return ImageSource(spec, resolution)
