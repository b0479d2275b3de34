"""Derived targets with ground truth: data sources computed from real data.

`derived:anime_sketch:train10` is the 10-shot "anime pencil sketch" target:
the XDoG sketches (fsig_jax.data.sketch) of 10 fixed anime faces from
../shared/data/anime_faces_64/train; `derived:anime_sketch:test` gives the
sketches of all 2,000 test faces, a real held-out set for FID-VGG, and
`derived:anime_photo:test` the matching photos (paired ground truth for
translation students). Nothing is stored: the transform is deterministic, so
the same files always give the same images.

The 10 training shots are the faces at sorted positions 0, 3143, 6286, ...
(evenly spaced through the sorted train split), a fixed choice spread over
the whole crawl rather than its first files. `trainN` for any other N (the
translation students' 20, 80 and 320 pairs) is made the same way: N evenly
spaced faces, positions i * (31431 // N); `trainN+K` shifts those positions by
K (other faces, e.g. the unpaired domains of the KDIT benchmark: photos from
train100, sketches from train100+157).
"""
import os
import pathlib
from typing import List, Optional

import numpy as np

from fsig_jax.data.images import DataError, list_image_files, load_image_files
from fsig_jax.data.sketch import xdog_sketch

PREFIX = 'derived:'
ANIME_DIRNAME = os.path.join('data', 'anime_faces_64')
SHOTS = 10


def default_shared() -> str:
  here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return os.environ.get('FSIG_SHARED', os.path.join(os.path.dirname(here), 'shared'))


def is_derived(source) -> bool:
  return isinstance(source, str) and source.startswith(PREFIX)


def shot_indices(n_files: int, shots: int = SHOTS) -> np.ndarray:
  """Evenly spaced positions in the sorted file list (0, n/shots, ...)."""
  return (np.arange(shots) * (n_files // shots)).astype(int)


def _anime_split(split: str, shared: Optional[str]) -> str:
  folder = os.path.join(shared or default_shared(), ANIME_DIRNAME, split)
  if not os.path.isdir(folder):
    raise DataError(f'{folder} is missing: derived anime targets are computed from the '
                    'anime faces in ../shared/data/anime_faces_64 (set FSIG_SHARED to its parent)')
  return folder


def _train_subset(subset: str):
  """(N, K) of a 'trainN' or 'trainN+K' subset (N >= 1, K >= 0), else None."""
  if not subset.startswith('train'):
    return None
  n, _, k = subset[5:].partition('+')
  if not n.isdigit() or int(n) < 1 or (k and not k.isdigit()) or (not k and _):
    return None
  return int(n), int(k or 0)


def train_shots(subset: str) -> Optional[int]:
  """N of a 'trainN' / 'trainN+K' subset (N >= 1), else None."""
  parsed = _train_subset(subset)
  return None if parsed is None else parsed[0]


def _parse(source: str):
  try:
    _, name, subset = source.split(':')
  except ValueError:
    raise DataError(f'bad derived source {source!r}: use derived:NAME:SUBSET, e.g. '
                    'derived:anime_sketch:train10') from None
  if name not in ('anime_sketch', 'anime_photo') or (
      subset != 'test' and train_shots(subset) is None):
    raise DataError(f'unknown derived source {source!r}: NAME is anime_sketch or anime_photo, '
                    'SUBSET is trainN (N evenly spaced train faces, e.g. train10), trainN+K '
                    '(the same positions shifted by K: other faces) or test')
  return name, subset


def derived_files(source: str, shared: Optional[str] = None) -> List[pathlib.Path]:
  """The real image files a 'derived:NAME:SUBSET' source is computed from (sorted)."""
  _, subset = _parse(source)
  parsed = _train_subset(subset)
  if parsed is not None:
    shots, offset = parsed
    files = list_image_files(pathlib.Path(_anime_split('train', shared)))
    if shots > len(files):
      raise DataError(f'{source}: the train split has only {len(files)} faces')
    if offset >= len(files) // shots:
      raise DataError(f'{source}: the offset K of trainN+K must be below '
                      f'{len(files) // shots} (the spacing of {shots} faces)')
    return [files[i + offset] for i in shot_indices(len(files), shots)]
  return list_image_files(pathlib.Path(_anime_split('test', shared)))


def load_derived(source: str, resolution: int, shared: Optional[str] = None) -> np.ndarray:
  """Images of a 'derived:NAME:SUBSET' source as (N, R, R, 3) float32 in [-1, 1]."""
  name, _ = _parse(source)
  photos = load_image_files(derived_files(source, shared), resolution, where=source)
  return xdog_sketch(photos) if name == 'anime_sketch' else photos


def model_sketches(bundle, num: int, seed: int, batch: int = 64) -> np.ndarray:
  """XDoG sketches of `num` samples of a model's G_ema: a target made by the project.

  Samples use z ~ N(0, I) from PRNGKey(seed), constant noise and no
  truncation, so (model, num, seed) always gives the same images. The README
  quickstart's committed target PNGs are these sketches of the shipped model
  (launch/make_targets.py); sketches of further seeds are an unlimited
  held-out set from the same distribution for FID-VGG.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if num < 1:
    raise ValueError(f'num must be >= 1, got {num}')
  z = bundle.sample_z(jax.random.PRNGKey(seed), num)
  imgs = np.concatenate([np.asarray(bundle.generate(z[i:i + batch]))
                         for i in range(0, num, batch)])
  return xdog_sketch(imgs)
