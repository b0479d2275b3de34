"""A training image set: 8-bit pixels held in memory, or a large folder read from disk per batch.

Pretraining sets are large (31,431 anime faces at 64 px are 1.5 GB as float32),
so a set is never held as float32 when its source is 8-bit: `load_image_set`
keeps the pixels as uint8 (a quarter of the memory), and a folder of more than
`stream_above` images is not held at all: its files are listed (and their
headers checked once, so a bad file fails at the start) and each batch reads
its images from disk. Either way `images[idx]` is the float32 [-1, 1] array the
library's one loader gives for those images (`from_uint8` of the same uint8
pixels), so batches drawn by `sources.BatchSampler` are identical whether a set
is held or streamed, and a pure function of (seed, step).

Code that needs the whole set as an array (a method's initialisation on a
few-shot set) gets it through `np.asarray(images)` (float32, built on demand).
"""
import logging
import os
import pathlib
from typing import Any, Optional, Sequence

import numpy as np

from fsig_jax.data.images import (TFDS_PREFIX, check_image_files, folder_image_files,
                                  load_image_files, load_images)
from fsig_jax.utils.images import from_uint8

log = logging.getLogger(__name__)


class ImageSet:
  """N images of shape (R, R, C); `images[idx]` -> float32 [-1, 1] (a new array).

  Built from `pixels` (an (N, R, R, C) uint8 or float array, held as is, uint8
  or float32) or from image `files` read at `resolution` on every access.
  """

  def __init__(self, pixels: Optional[np.ndarray] = None, *,
               files: Optional[Sequence[pathlib.Path]] = None, resolution: int = 0,
               grayscale: str = 'convert', alpha: str = 'composite', where: str = ''):
    if (pixels is None) == (files is None):
      raise ValueError('ImageSet takes pixels or files, not both or neither.')
    if pixels is not None:
      pixels = np.asarray(pixels)
      if pixels.dtype != np.uint8:
        pixels = np.asarray(pixels, np.float32)
      self.shape = tuple(pixels.shape)
    else:
      files = list(files)
      self.shape = (len(files), resolution, resolution, 3)
    self.pixels, self.files = pixels, files
    self._read = dict(grayscale=grayscale, alpha=alpha, where=where)

  dtype = np.dtype(np.float32)  # of what indexing gives

  @property
  def streamed(self) -> bool:
    """True when the images are read from disk per access (no pixels held)."""
    return self.files is not None

  @property
  def nbytes(self) -> int:
    """Bytes of pixels held in memory (0 when streamed)."""
    return 0 if self.pixels is None else int(self.pixels.nbytes)

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, idx) -> np.ndarray:
    if self.pixels is not None:
      x = self.pixels[idx]
      return from_uint8(x) if x.dtype == np.uint8 else np.array(x, np.float32)
    picked = np.arange(len(self))[idx]
    files = [self.files[i] for i in np.atleast_1d(picked)]
    x = from_uint8(load_image_files(files, self.shape[1], uint8=True, warn=False, **self._read))
    return x if np.ndim(picked) else x[0]

  def __array__(self, dtype=None, copy=None):
    del copy  # always a new array
    if self.streamed:
      log.info('reading all %d images of %s into memory', len(self), self._read['where'])
    x = self[np.arange(len(self))]
    return x if dtype is None else x.astype(dtype, copy=False)


def load_image_set(source: Any, resolution: int, *, min_images: int = 1,
                   max_images: Optional[int] = None, stream_above: int = 0,
                   **kw) -> ImageSet:
  """An ImageSet of `source` (anything `load_images` takes) at `resolution`: uint8
  pixels in memory when the source is 8-bit, or, for a folder of more than
  `stream_above` images (0: never), its files read per batch. `kw` go to
  `load_images` (grayscale, alpha, ...)."""
  if isinstance(source, ImageSet):
    return source
  if (stream_above and isinstance(source, (str, os.PathLike))
      and not str(source).startswith(TFDS_PREFIX)):
    files = folder_image_files(source, min_images=min_images, max_images=max_images,
                               recursive=kw.get('recursive', False))
    if len(files) > stream_above:
      check_image_files(files, resolution, str(source))
      log.info('%s: %d images, more than data.stream_above=%d: read from disk per batch',
               source, len(files), stream_above)
      return ImageSet(files=files, resolution=resolution, where=str(source),
                      grayscale=kw.get('grayscale', 'convert'),
                      alpha=kw.get('alpha', 'composite'))
  return ImageSet(load_images(source, resolution, min_images=min_images, max_images=max_images,
                              uint8=True, **kw))
