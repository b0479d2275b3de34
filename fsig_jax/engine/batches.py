"""The adaptation step's inputs at each step: the target batch and the methods' data.

`Batches(images, hp.batch_size, seed, flip, method, resolution, mesh)` gives,
for a step, `(real, extra)`: the target batch, and {stream: batch} (or None) for every
image stream a method declares in `Method.data` (KD-FSIG's real source-domain
images). Each stream is loaded once at the model's resolution with the library's
one loader (an `ImageSet`: uint8, or read per batch above `stream_above`
images) and sampled by its own `BatchSampler`, so every batch is a pure
function of (seed, step) and a resumed run sees the same data. With a mesh,
each process draws its slice of the global batch and the result is sharded over
the devices (`parallel.global_batch`); without one, plain host arrays.
"""
import zlib
from typing import Dict, Optional, Tuple

import jax

from fsig_jax.data.image_set import load_image_set
from fsig_jax.data.sources import BatchSampler
from fsig_jax.engine import parallel
from fsig_jax.errors import ConfigError, DataError


def stream_seed(seed: int, name: str) -> int:
  """A stream's sampler seed: independent of the target batches' (seed) and of
  other streams, a function of (seed, name) only."""
  return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 31 - 1)


class Batches:
  """(real, extra) for each step; see the module docstring."""

  def __init__(self, images, batch_size: int, *, seed: int, flip: bool, method=None,
               resolution: Optional[int] = None, mesh=None, stream_above: int = 0):
    self.mesh = mesh
    self.target = BatchSampler(images, batch_size, seed=seed, flip=flip)
    self.streams = {}
    for name, spec in sorted(getattr(method, 'data', {}).items()):
      try:
        data = load_image_set(spec['source'], resolution or self.target.images.shape[1],
                              max_images=spec.get('max_images') or None,
                              min_images=spec.get('min_images', 1), stream_above=stream_above)
      except DataError as e:
        raise ConfigError(f"{spec.get('setting', name)} = {spec['source']!r}: {e}") from None
      self.streams[name] = BatchSampler(data, batch_size, seed=stream_seed(seed, name),
                                        flip=spec.get('flip', flip))

  def _draw(self, sampler: BatchSampler, step: int):
    if self.mesh is None:
      return sampler.batch(step)
    local = sampler.local_batch(step, jax.process_index(), jax.process_count())
    return parallel.global_batch(local, self.mesh)

  def __call__(self, step: int) -> Tuple[jax.Array, Optional[Dict[str, jax.Array]]]:
    extra = {name: self._draw(s, step) for name, s in self.streams.items()} or None
    return self._draw(self.target, step), extra
