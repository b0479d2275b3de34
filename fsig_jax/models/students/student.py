"""A trained translation student as a callable: images in, translated images out."""
import functools

import jax
import numpy as np

from fsig_jax.models import students


class Student:
  """`Student(bundle)(images)`: NHWC images (uint8, or floats in [-1, 1]) -> the
  student's outputs as float32 in [-1, 1], in jitted batches.

  `bundle` is the ModelBundle a student trainer exports (its config a student
  config of models/students, its nets {'student': {'params': ...}}); load one
  with `fsig_jax.api.load_student(PATH)`.
  """

  def __init__(self, bundle, batch_size: int = 32):
    self.bundle, self.config, self.batch_size = bundle, bundle.config, batch_size
    self.params = bundle.require('student')['params']
    self._fn = jax.jit(functools.partial(students.apply_student, self.config))

  @property
  def resolution(self) -> int:
    return self.config.resolution

  def __call__(self, images) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype == np.uint8:
      x = x.astype(np.float32) / 127.5 - 1.0
    x = np.asarray(x, np.float32)
    r = self.resolution
    if x.ndim != 4 or x.shape[1:] != (r, r, self.config.in_channels):
      raise ValueError(f'this student translates (N, {r}, {r}, {self.config.in_channels}) '
                       f'images, got {x.shape}; load them with '
                       f'fsig_jax.data.images.load_images(SOURCE, {r})')
    if not len(x):
      return x
    return np.concatenate([np.asarray(self._fn(self.params, x[i:i + self.batch_size]))
                           for i in range(0, len(x), self.batch_size)])
