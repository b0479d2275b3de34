"""Paired translation data: (input photo, target image) pairs for the students.

Two kinds of paired source, both split into N training pairs and a test set:

  'derived:anime_sketch'  anime faces and their XDoG sketches (data/targets.py):
                          train = the N evenly spaced train-split faces
                          (`derived:anime_photo:trainN` / `anime_sketch:trainN`),
                          test = all 2,000 test-split faces and sketches.
  FOLDER                  a folder with an input and a target subfolder
                          (default `photo/` and `sketch/`, the layout of
                          ../shared/data/cufs_pairs_64), pairs matched by file
                          name: train = N evenly spaced pairs of the sorted
                          names (positions i * (count // N), as the derived
                          shots), test = every other pair.

Images are NHWC float32 in [-1, 1] at the requested resolution, from the one
image loader (data/images.py).
"""
import os
import pathlib
from typing import Optional, Tuple

import numpy as np

from fsig_jax.data import targets
from fsig_jax.data.images import DataError, list_image_files, load_image_files
from fsig_jax.data.sketch import xdog_sketch

ANIME = 'derived:anime_sketch'
SPLITS = ('train', 'test')


def pair_files(folder: str, input_dir: str = 'photo', target_dir: str = 'sketch'):
  """Matched (input files, target files) of a paired folder, sorted by name."""
  root = pathlib.Path(folder)
  ins = list_image_files(root / input_dir)
  outs = list_image_files(root / target_dir)
  by_stem = lambda files: {p.stem: p for p in files}  # noqa: E731
  a, b = by_stem(ins), by_stem(outs)
  unmatched = sorted(set(a) ^ set(b))
  if unmatched:
    raise DataError(f'{folder}: {len(unmatched)} image(s) have no partner in the other '
                    f'subfolder ({input_dir}/ vs {target_dir}/), e.g. {unmatched[:5]}; '
                    'pairs are matched by file name (without extension)')
  names = sorted(a)
  return [a[n] for n in names], [b[n] for n in names]


def load_pairs(source: str, split: str, n_train: int, resolution: int, *,
               input_dir: str = 'photo', target_dir: str = 'sketch',
               shared: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
  """(inputs, targets) of a paired source's `split` ('train': n_train pairs; 'test')."""
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  if n_train < 1:
    raise DataError(f'data.train_pairs must be >= 1, got {n_train}')
  if source == ANIME:
    subset = f'train{n_train}' if split == 'train' else 'test'
    photos = targets.load_derived(f'derived:anime_photo:{subset}', resolution, shared)
    return photos, xdog_sketch(photos)
  if targets.is_derived(source):
    raise DataError(f'unknown paired source {source!r}: use {ANIME!r} or a folder with '
                    f'{input_dir}/ and {target_dir}/ subfolders')
  if not os.path.isdir(source):
    raise DataError(f'paired data folder {source} does not exist: pass a folder with '
                    f'{input_dir}/ and {target_dir}/ subfolders of matching file names, '
                    f'or {ANIME!r}')
  ins, outs = pair_files(source, input_dir, target_dir)
  if n_train >= len(ins):
    raise DataError(f'{source} has {len(ins)} pairs: data.train_pairs={n_train} leaves no '
                    'test pairs; use fewer training pairs')
  train = set(targets.shot_indices(len(ins), n_train).tolist())
  idx = [i for i in range(len(ins)) if (i in train) == (split == 'train')]
  where = f'{source} ({split})'
  return (load_image_files([ins[i] for i in idx], resolution, where=where),
          load_image_files([outs[i] for i in idx], resolution, where=where))
