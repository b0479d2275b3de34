"""Training batches as a pure function of (seed, step), so resumed runs see the same data.

A `BatchSampler` draws each batch of a training set from
`np.random.default_rng([seed, step])`; no iterator state has to be
checkpointed, and every process of a multi-host run computes the same global
batch and keeps its own contiguous slice. The set is an `image_set.ImageSet`:
held on the host (8-bit sources as uint8) or, when large, read from disk per
batch, with the same batches either way.

Horizontal flips are off by default (`flip=False`): the sampler returns the
data as given and leaves augmentation to the training config. StyleGAN2-pytorch
(rosinality) `train.py` uses `transforms.RandomHorizontalFlip()`, and the
CDC-derived training scripts we could inspect keep it, so configs reproducing
those papers should pass `flip=True`.
"""
from typing import Tuple

import numpy as np

from fsig_jax.data.image_set import ImageSet


class BatchSampler:
  """Deterministic float32 minibatches of an (N, R, R, C) image set: an `ImageSet`, or
  an array (uint8 [0, 255], held as uint8, or floats in [-1, 1]); C = 3, or 6 for the
  translation students' (input, target) pairs, flipped together.

  `batch(step)` depends only on (seed, step): indices are drawn without
  replacement when N >= batch_size and with replacement otherwise (a 10-shot
  set with batch 16), and with `flip` each image is mirrored left-right with
  probability 1/2.

  Attributes:
    images: the set, an `ImageSet` (`images[idx]` -> float32).
    batch_size: global batch size.
    seed: base seed; different seeds give different batch sequences.
    flip: random horizontal flips.
  """

  def __init__(self, images, batch_size: int, seed: int = 0, flip: bool = False):
    images = images if isinstance(images, ImageSet) else ImageSet(images)
    if len(images.shape) != 4 or images.shape[0] == 0:
      raise ValueError(f"BatchSampler needs a non-empty (N, R, R, C) array, got {images.shape}.")
    if int(batch_size) < 1:
      raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if int(seed) < 0:
      raise ValueError(f"seed must be a non-negative int, got {seed}.")
    self.images = images
    self.batch_size = int(batch_size)
    self.seed = int(seed)
    self.flip = bool(flip)

  def __len__(self) -> int:
    return self.images.shape[0]

  def _draw(self, step: int) -> Tuple[np.ndarray, np.ndarray]:
    """Image indices and flip flags of the global batch at `step`."""
    if int(step) < 0:
      raise ValueError(f"step must be a non-negative int, got {step}.")
    rng = np.random.default_rng([self.seed, int(step)])
    n = len(self)
    idx = rng.choice(n, size=self.batch_size, replace=n < self.batch_size)
    flips = rng.random(self.batch_size) < 0.5 if self.flip else np.zeros(self.batch_size, bool)
    return idx, flips

  def _gather(self, idx: np.ndarray, flips: np.ndarray) -> np.ndarray:
    out = self.images[idx]  # A new float32 array: callers may modify the batch.
    out[flips] = out[flips][:, :, ::-1]
    return out

  def batch(self, step: int) -> np.ndarray:
    """The global batch (batch_size, R, R, C) at `step`."""
    return self._gather(*self._draw(step))

  def local_batch(self, step: int, process_index: int, process_count: int) -> np.ndarray:
    """This process's contiguous slice of `batch(step)`, batch_size / process_count images."""
    if process_count < 1 or not 0 <= process_index < process_count:
      raise ValueError(f"process_index {process_index} is not in [0, {process_count}).")
    if self.batch_size % process_count:
      raise ValueError(f"batch_size {self.batch_size} is not divisible by process_count "
                       f"{process_count}: pick a batch size that is a multiple of it.")
    per = self.batch_size // process_count
    idx, flips = self._draw(step)
    part = slice(process_index * per, (process_index + 1) * per)
    return self._gather(idx[part], flips[part])
