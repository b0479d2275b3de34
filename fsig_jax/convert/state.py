"""A read-only view of a torch-style state dict with errors that name the file.

Both converters pull tensors through `StateDict`, so a missing or misshapen
tensor always becomes a `CheckpointError` naming the checkpoint, the key and
what was expected, never a KeyError from deep inside the conversion.
"""
import re
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from fsig_jax.errors import CheckpointError


class StateDict:
  """Maps 'a.b.c' names to float32 numpy arrays, for one network of a file."""

  def __init__(self, tensors: Dict[str, np.ndarray], path: str, what: str):
    self.tensors = tensors
    self.path = path
    self.what = what  # e.g. "g_ema" or "G_ema", used in messages
    self.used = set()

  def __contains__(self, key: str) -> bool:
    return key in self.tensors

  def get(self, key: str, shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
    """The tensor `key` as float32, checked against `shape` when given."""
    if key not in self.tensors:
      near = sorted(self.tensors)[:8]
      raise CheckpointError(
          f'{self.path}: {self.what} has no tensor {key!r}; this does not look like '
          f'a StyleGAN2 checkpoint of the expected layout (first keys: {near})')
    v = np.asarray(self.tensors[key], dtype=np.float32)
    if shape is not None and tuple(v.shape) != tuple(shape):
      raise CheckpointError(
          f'{self.path}: {self.what}[{key!r}] has shape {tuple(v.shape)}, expected '
          f'{tuple(shape)}; the checkpoint is inconsistent or of another architecture')
    self.used.add(key)
    return v

  def indices(self, pattern: str) -> Iterable[int]:
    """Sorted integers i for which `pattern.format(i=...)`-style keys exist."""
    rx = re.compile('^' + re.escape(pattern).replace(r'\{i\}', r'(\d+)') + '$')
    return sorted({int(m.group(1)) for k in self.tensors if (m := rx.match(k))})


def dense(w: np.ndarray, b: Optional[np.ndarray] = None) -> dict:
  """torch Linear (out, in) -> {'kernel': (in, out), 'bias'}."""
  out = {'kernel': np.ascontiguousarray(w.T)}
  if b is not None:
    out['bias'] = b
  return out


def conv(w: np.ndarray) -> np.ndarray:
  """torch conv weight OIHW -> HWIO."""
  return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))
