"""A trained translation student as a callable: images in, translated images out."""
import functools

import jax
import numpy as np

from fsig_jax.models import students
from fsig_jax.utils.images import from_uint8


def _floats(x) -> np.ndarray:
  """NHWC images (or condition arrays) as float32; uint8 images to [-1, 1]."""
  x = np.asarray(x)
  return from_uint8(x) if x.dtype == np.uint8 else np.asarray(x, np.float32)


def _batched(fn, params, x: np.ndarray, batch_size: int, *extra: np.ndarray) -> np.ndarray:
  """fn(params, x[i:j], *extra[i:j]) over batches, concatenated (numpy)."""
  if not len(x):
    return x
  return np.concatenate([np.asarray(fn(params, x[i:i + batch_size],
                                       *(e[i:i + batch_size] for e in extra)))
                         for i in range(0, len(x), batch_size)])


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
    x = _floats(images)
    r = self.resolution
    if x.ndim != 4 or x.shape[1:] != (r, r, self.config.in_channels):
      raise ValueError(f'this student translates (N, {r}, {r}, {self.config.in_channels}) '
                       f'images, got {x.shape}; load them with '
                       f'fsig_jax.data.images.load_images(SOURCE, {r})')
    return _batched(self._fn, self.params, x, self.batch_size)


class StarGANStudent:
  """A trained StarGAN v2 (KDIT) as a callable, with its EMA networks:

    student(images, domain, reference=refs)   # reference-guided: the style of refs
    student(images, domain, seed=0)           # latent-guided: styles from N(0, I) latents

  images / refs: NHWC uint8 or floats in [-1, 1] at the student's resolution
  (refs: one per image, or one for all); domain: the target domain index.
  Outputs float32 in [-1, 1] (clipped; StarGAN v2's G has no output tanh).
  """

  def __init__(self, bundle, batch_size: int = 16):
    from fsig_jax.models.students import stargan_v2  # pylint: disable=g-import-not-at-top
    self.bundle, self.config, self.batch_size = bundle, bundle.config, batch_size
    self.params = {n: bundle.require(f'{n}_ema')['params'] for n in ('G', 'mapping', 'style')}
    nets = stargan_v2.networks(self.config)
    self._style = jax.jit(lambda p, x, y: nets['style'].apply({'params': p}, x, y))
    self._map = jax.jit(lambda p, z, y: nets['mapping'].apply({'params': p}, z, y))
    self._gen = jax.jit(lambda p, x, s: nets['G'].apply({'params': p}, x, s))

  @property
  def resolution(self) -> int:
    return self.config.resolution

  def _images(self, x, what: str) -> np.ndarray:
    x = _floats(x)
    r = self.resolution
    if x.ndim != 4 or x.shape[1:] != (r, r, 3):
      raise ValueError(f'{what}: this student takes (N, {r}, {r}, 3) images, got {x.shape}')
    return x

  def styles(self, n: int, domain: int, *, reference=None, seed=None) -> np.ndarray:
    """(n, style_dim) style codes for `domain`, from references or a latent seed."""
    if not 0 <= int(domain) < self.config.num_domains:
      raise ValueError(f'domain {domain} is not in [0, {self.config.num_domains})')
    y = np.full((n,), int(domain), np.int32)
    if (reference is None) == (seed is None):
      raise ValueError('pass exactly one of reference= (images) or seed= (latent-guided)')
    if reference is not None:
      ref = self._images(reference, 'reference')
      if len(ref) == 1:
        ref = np.repeat(ref, n, axis=0)
      if len(ref) != n:
        raise ValueError(f'{len(ref)} references for {n} images: pass one or one per image')
      return _batched(self._style, self.params['style'], ref, 64, y)
    z = jax.random.normal(jax.random.PRNGKey(int(seed)), (n, self.config.latent_dim))
    return np.asarray(self._map(self.params['mapping'], z, y))

  def __call__(self, images, domain: int, *, reference=None, seed=None) -> np.ndarray:
    x = self._images(images, 'images')
    if not len(x):
      return x
    s = self.styles(len(x), domain, reference=reference, seed=seed)
    return np.clip(_batched(self._gen, self.params['G'], x, self.batch_size, s), -1.0, 1.0)


class ConditionalStudent:
  """A trained KDIT SPADE student (stage 2) as a callable: conditions in, images out.

    student(sketches, seed=0)     # spatial: NHWC condition maps (uint8 or [-1, 1])
    student(embeddings, seed=0)   # vector: (N, d) condition vectors

  The student's own noise z_s comes from `seed`; outputs float32 in [-1, 1].
  A vector student trained with a condition adapter (`cond_in`) applies it.
  """

  def __init__(self, bundle, batch_size: int = 16):
    from fsig_jax.models.students import spade_generator  # pylint: disable=g-import-not-at-top
    self.bundle, self.config, self.batch_size = bundle, bundle.config, batch_size
    self.params = bundle.require('G')['params']
    self.cond_in = bundle.nets.get('cond_in', {}).get('params')
    g = spade_generator.SPADEStudent(self.config)
    self._gen = jax.jit(lambda p, z, c: g.apply({'params': p}, z, c))

  @property
  def resolution(self) -> int:
    return self.config.resolution

  def __call__(self, conditions, seed: int = 0) -> np.ndarray:
    c = np.asarray(conditions)
    if self.config.cond == 'spatial':
      c = _floats(c)
      if c.ndim != 4 or c.shape[-1] != self.config.cond_channels:
        raise ValueError(f'this student takes (N, H, W, {self.config.cond_channels}) condition '
                         f'maps, got {c.shape}')
    else:
      want = (self.cond_in['kernel'].shape[0] if self.cond_in is not None
              else self.config.cond_channels)
      if c.ndim != 2 or c.shape[1] != want:
        raise ValueError(f'this student takes (N, {want}) condition vectors, got {c.shape}')
      if self.cond_in is not None:
        c = c @ np.asarray(self.cond_in['kernel']) + np.asarray(self.cond_in['bias'])
    c = np.asarray(c, np.float32)
    if not len(c):
      return c
    z = np.asarray(jax.random.normal(jax.random.PRNGKey(int(seed)), (len(c), self.config.z_dim)))
    return _batched(self._gen, self.params, z, self.batch_size, c)
