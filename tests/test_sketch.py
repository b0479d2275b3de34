"""XDoG pencil sketch: determinism, value range, and a real anime face."""
import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from fsig_jax.data import sketch


def _faces(n=4):
  folder = shared_path("data", "anime_faces_64", "train")
  files = sorted(folder.glob("*.jpg"))[:n]
  return np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32) / 127.5 - 1 for f in files])


def test_deterministic_range_and_shape():
  x = np.tanh(np.random.RandomState(0).randn(3, 20, 24, 3)).astype(np.float32)
  a, b = sketch.xdog_sketch(x), sketch.xdog_sketch(x.copy())
  np.testing.assert_array_equal(a, b)
  assert a.shape == x.shape and a.dtype == np.float32
  assert a.min() >= -1 and a.max() <= 1
  np.testing.assert_array_equal(a[..., 0], a[..., 2])


def test_flat_bright_image_is_blank_paper():
  assert np.all(sketch.xdog_sketch(np.full((1, 16, 16, 3), 0.8, np.float32)) == 1.0)


def test_anime_faces_look_like_line_drawings():
  out = sketch.xdog_sketch(_faces())
  white = (out[..., 0] > 0.9).mean()
  dark = (out[..., 0] < -0.5).mean()
  assert 0.5 < white < 0.95 and 0.02 < dark < 0.4, (white, dark)


def test_rejects_non_nhwc():
  with pytest.raises(ValueError, match="NHWC"):
    sketch.xdog_sketch(np.zeros((16, 16, 3)))
