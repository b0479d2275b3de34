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
the whole crawl rather than its first files.
"""
import os
import pathlib
from typing import Optional

import numpy as np

from fsig_jax.data.images import DataError, list_image_files, load_image_files, load_image_folder
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


def load_derived(source: str, resolution: int, shared: Optional[str] = None) -> np.ndarray:
  """Images of a 'derived:NAME:SUBSET' source as (N, R, R, 3) float32 in [-1, 1]."""
  try:
    _, name, subset = source.split(':')
  except ValueError:
    raise DataError(f'bad derived source {source!r}: use derived:NAME:SUBSET, e.g. '
                    'derived:anime_sketch:train10') from None
  if name not in ('anime_sketch', 'anime_photo') or subset not in ('train10', 'test'):
    raise DataError(f'unknown derived source {source!r}: NAME is anime_sketch or anime_photo, '
                    'SUBSET is train10 or test')
  if subset == 'train10':
    folder = _anime_split('train', shared)
    files = list_image_files(pathlib.Path(folder))
    photos = load_image_files([files[i] for i in shot_indices(len(files))], resolution)
  else:
    photos = load_image_folder(_anime_split('test', shared), resolution)
  return xdog_sketch(photos) if name == 'anime_sketch' else photos

