"""The image loader (folders, arrays, tfds) and the deterministic batch sampler."""
import logging
import re

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from conftest import shared_path
from fsig_jax.data import images as images_lib
from fsig_jax.data.images import DataError, load_image_folder, load_images, write_image_folder
from fsig_jax.data.sources import BatchSampler


def _babies():
  return shared_path("data", "ten_shot", "babies")


def _save(path, arr, mode=None):
  Image.fromarray(arr, mode).save(path)
  return path


def _rgb(h=16, w=16, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- real data


def test_ten_shot_babies_at_256_keeps_exact_pixels_and_at_64_uses_lanczos():
  folder = _babies()
  x256 = load_image_folder(folder, 256, min_images=10)
  assert x256.shape == (10, 256, 256, 3) and x256.dtype == np.float32
  assert x256.min() >= -1.0 and x256.max() <= 1.0
  first = np.asarray(Image.open(folder / "00.jpg").convert("RGB"))
  np.testing.assert_array_equal(x256[0], first.astype(np.float32) / 127.5 - 1)
  x64 = load_images(str(folder), 64)
  assert x64.shape == (10, 64, 64, 3)
  last = Image.open(folder / "09.jpg").convert("RGB").resize((64, 64), Image.Resampling.LANCZOS)
  np.testing.assert_array_equal(x64[9], np.asarray(last).astype(np.float32) / 127.5 - 1)


def test_anime_faces_first_16_by_name():
  folder = shared_path("data", "anime_faces_64", "train")
  x = load_image_folder(folder, 64, max_images=16)
  assert x.shape == (16, 64, 64, 3)
  first = sorted(p for p in folder.iterdir() if p.suffix == ".jpg")[0]
  np.testing.assert_array_equal(x[0], np.asarray(Image.open(first)).astype(np.float32) / 127.5 - 1)


def test_truncated_real_jpeg_is_named(tmp_path):
  _check_truncated_jpeg((_babies() / "03.jpg").read_bytes(), tmp_path)


def test_truncated_generated_jpeg_is_named(tmp_path):
  _save(tmp_path / "src.jpg", _rgb(64, 64))
  _check_truncated_jpeg((tmp_path / "src.jpg").read_bytes(), tmp_path / "bad")


def _check_truncated_jpeg(data, tmp_path):
  tmp_path.mkdir(exist_ok=True)
  (tmp_path / "a_ok.jpg").write_bytes(data)
  (tmp_path / "b_cut.jpg").write_bytes(data[: len(data) // 2])
  with pytest.raises(DataError, match="b_cut.jpg"):
    load_image_folder(tmp_path, 64)


def test_image_over_the_decompression_bomb_limit_is_named(tmp_path, monkeypatch):
  """A huge image (13,500 px a side in the wild) raises PIL's DecompressionBombError from
  deep inside; here the limit is lowered instead: one DataError naming the file, its size
  and the fixes, from a full load and from the header check of streamed sets."""
  _save(tmp_path / "a_ok.png", _rgb(8, 8))
  _save(tmp_path / "b_huge.png", _rgb(30, 40))
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # PIL refuses above 2x: 1,000 pixels
  pattern = (r"Image .*b_huge\.png is too large to load: 1,200 pixels, over PIL's "
             r"decompression-bomb limit of 1,000 pixels\. Resize it .* or move it out of the "
             r"folder; .*raise PIL\.Image\.MAX_IMAGE_PIXELS")
  with pytest.raises(DataError, match=pattern):
    load_image_folder(tmp_path, 8)
  files = sorted(tmp_path.iterdir())
  with pytest.raises(DataError, match=pattern):
    images_lib.check_image_files(files, 8, str(tmp_path))
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
  assert load_image_folder(tmp_path, 8).shape == (2, 8, 8, 3)


# --------------------------------------------------------------------------- folders


def test_sorted_by_name_hidden_and_other_files_ignored_roundtrip(tmp_path):
  imgs = np.stack([_rgb(seed=s) for s in range(3)]).astype(np.float32) / 127.5 - 1
  for name, im in zip(["c.PNG", "a.bmp", "b.webp"], imgs):
    Image.fromarray(images_lib.to_uint8(im)).save(tmp_path / name, lossless=True)
  (tmp_path / ".hidden.png").write_bytes(b"not an image")
  (tmp_path / "notes.txt").write_text("ignored")
  x = load_image_folder(tmp_path, 16)
  np.testing.assert_array_equal(x, imgs[[1, 2, 0]])  # a.bmp, b.webp, c.PNG


def test_write_image_folder_roundtrip(tmp_path):
  x = np.random.default_rng(1).uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
  paths = write_image_folder(x, tmp_path / "out", prefix="s")
  assert [p.name for p in paths] == ["s00000.png", "s00001.png", "s00002.png"]
  np.testing.assert_allclose(load_image_folder(tmp_path / "out", 8), x, atol=0.5 / 127.5 + 1e-6)


def test_recursive(tmp_path):
  (tmp_path / "sub").mkdir()
  _save(tmp_path / "sub" / "x.png", _rgb())
  with pytest.raises(DataError, match="recursive=True"):
    load_image_folder(tmp_path, 16)
  assert load_image_folder(tmp_path, 16, recursive=True).shape == (1, 16, 16, 3)


def test_center_crop_then_resize(tmp_path):
  wide = np.zeros((20, 40, 3), np.uint8)
  wide[:, 10:30] = 200  # The centered 20x20 square is uniform.
  _save(tmp_path / "w.png", wide)
  x = load_image_folder(tmp_path, 10)
  np.testing.assert_allclose(x, 200 / 127.5 - 1, atol=1e-6)


def test_missing_folder_and_file_path(tmp_path):
  with pytest.raises(DataError, match="does not exist"):
    load_image_folder(tmp_path / "nope", 64)
  f = _save(tmp_path / "one.png", _rgb())
  with pytest.raises(DataError, match="is a file.*pass the folder"):
    load_images(f, 64)


def test_empty_folder_and_only_other_extensions(tmp_path):
  with pytest.raises(DataError, match="empty"):
    load_image_folder(tmp_path, 64)
  (tmp_path / "a.txt").write_text("x")
  (tmp_path / "b.txt").write_text("x")
  (tmp_path / "c.gif").write_bytes(b"GIF89a")
  with pytest.raises(DataError, match=r"\.txt \(2\), \.gif \(1\)"):
    load_image_folder(tmp_path, 64)


def test_text_file_named_png(tmp_path):
  (tmp_path / "x.png").write_text("hello, not a PNG")
  with pytest.raises(DataError, match="x.png"):
    load_image_folder(tmp_path, 64)


def test_min_images(tmp_path):
  _save(tmp_path / "a.png", _rgb())
  with pytest.raises(DataError, match="1 image.*at least 2"):
    load_image_folder(tmp_path, 16, min_images=2)


def test_grey_images_convert_or_refuse(tmp_path):
  grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
  _save(tmp_path / "g.png", grey, "L")
  x = load_image_folder(tmp_path, 16)
  np.testing.assert_array_equal(x[0, ..., 0], x[0, ..., 2])
  np.testing.assert_allclose(x[0, ..., 1], grey / 127.5 - 1, atol=1e-6)
  with pytest.raises(DataError, match="g.png.*grey"):
    load_image_folder(tmp_path, 16, grayscale="error")


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
  _save(tmp_path / "g16.png", np.full((8, 8), 32896, np.uint16))  # 128 * 257.
  np.testing.assert_allclose(load_image_folder(tmp_path, 8), 128 / 127.5 - 1, atol=1e-6)


def test_grey_palette_counts_as_grey_colour_palette_does_not(tmp_path):
  Image.fromarray(np.full((8, 8), 90, np.uint8), "L").convert("P").save(tmp_path / "p.png")
  with pytest.raises(DataError, match="grey"):
    load_image_folder(tmp_path, 8, grayscale="error")
  (tmp_path / "p.png").unlink()
  Image.fromarray(_rgb(8, 8)).convert("P").save(tmp_path / "c.png")
  assert load_image_folder(tmp_path, 8, grayscale="error").shape == (1, 8, 8, 3)


def test_rgba_composited_on_white_or_refused(tmp_path):
  rgba = np.zeros((8, 8, 4), np.uint8)
  rgba[:4] = (255, 0, 0, 255)  # Opaque red top half, fully transparent black bottom half.
  _save(tmp_path / "t.png", rgba, "RGBA")
  x = load_image_folder(tmp_path, 8)
  np.testing.assert_allclose(x[0, :4], np.broadcast_to([1.0, -1.0, -1.0], (4, 8, 3)))
  np.testing.assert_allclose(x[0, 4:], 1.0)  # White, not the hidden black.
  with pytest.raises(DataError, match="t.png.*transparent"):
    load_image_folder(tmp_path, 8, alpha="error")
  rgba[..., 3] = 255  # Opaque RGBA is accepted even with alpha='error'.
  _save(tmp_path / "t.png", rgba, "RGBA")
  assert load_image_folder(tmp_path, 8, alpha="error").shape == (1, 8, 8, 3)


def test_small_images_warn(tmp_path, caplog):
  _save(tmp_path / "tiny.png", _rgb(8, 8))
  with caplog.at_level(logging.WARNING):
    x = load_image_folder(tmp_path, 64)
  assert x.shape == (1, 64, 64, 3)
  assert "tiny.png" in caplog.text and "upsampled" in caplog.text


# --------------------------------------------------------------------------- arrays


def test_uint8_nhwc_array():
  a = np.stack([_rgb(seed=s) for s in range(2)])
  x = load_images(a, 16)
  np.testing.assert_allclose(x, a / 127.5 - 1, atol=1e-6)
  assert x.dtype == np.float32


def test_nchw_float_and_jax_arrays():
  x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
  np.testing.assert_array_equal(load_images(x, 8), x.transpose(0, 2, 3, 1))
  np.testing.assert_array_equal(load_images(jnp.asarray(x), 8), x.transpose(0, 2, 3, 1))


def test_float_arrays_outside_minus1_1_are_refused_with_hint():
  x01 = np.random.default_rng(3).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
  with pytest.raises(DataError, match=r"\[0, 1\].*x \* 2 - 1"):
    load_images(x01, 8)
  with pytest.raises(DataError, match=r"\[0, 255\].*x / 127.5 - 1"):
    load_images(x01 * 255, 8)
  with pytest.raises(DataError, match="NaN"):
    load_images(np.full((1, 8, 8, 3), np.nan, np.float32), 8)
  with pytest.raises(DataError, match="4 axes"):
    load_images(x01[0], 8)
  with pytest.raises(DataError, match="dtype int64"):
    load_images(np.zeros((1, 8, 8, 3), np.int64), 8)


def test_wrong_size_arrays_resized_like_folder_images(tmp_path, caplog):
  a = np.stack([_rgb(24, 32, seed=s) for s in range(2)])
  for i, im in enumerate(a):
    _save(tmp_path / f"{i}.png", im)
  with caplog.at_level(logging.INFO):
    x = load_images(a, 16)
  assert "Resizing 2 array images" in caplog.text
  np.testing.assert_array_equal(x, load_image_folder(tmp_path, 16))
  # Float path: per channel in mode F, no uint8 rounding between the two LANCZOS passes, so it
  # matches the uint8 path up to quantization on smooth images (noise overshoots differently).
  yy, xx = np.mgrid[0:24, 0:32] / 32.0
  smooth = np.stack([np.sin(3 * xx + c) * np.cos(2 * yy) for c in range(3)], -1)[None]
  xf = load_images(smooth.astype(np.float32) * 0.9, 16)
  xu = load_images(images_lib.to_uint8(smooth * 0.9), 16)
  assert xf.shape == (1, 16, 16, 3) and xf.min() >= -1 and xf.max() <= 1
  np.testing.assert_allclose(xf, xu, atol=1.5 / 127.5)


# --------------------------------------------------------------------------- tfds


def test_tfds_not_prepared_names_data_dir(tmp_path):
  where = re.escape(str(tmp_path))
  with pytest.raises(DataError, match=f"not prepared in data_dir {where}.*tfds build mnist"):
    load_images("tfds:mnist:train", 32, tfds_data_dir=str(tmp_path))
  with pytest.raises(DataError, match="no dataset 'no_such_dataset_fsig'"):
    load_images("tfds:no_such_dataset_fsig", 32, tfds_data_dir=str(tmp_path))


def test_tfds_local_dataset_success(tmp_path):
  """Builds a 3-image tfds dataset offline in tmp_path (~3 s, TensorFlow import included)."""
  tfds = pytest.importorskip("tensorflow_datasets")
  pixels = [np.full((12, 12, 3), 40 * i, np.uint8) for i in range(3)]

  class FsigTinyImages(tfds.core.GeneratorBasedBuilder):
    """Three flat-colour 12x12 images."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self, features=tfds.features.FeaturesDict({"image": tfds.features.Image()}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i, p in enumerate(pixels):
        yield i, {"image": p}

  FsigTinyImages(data_dir=str(tmp_path)).download_and_prepare()
  x = load_images("tfds:fsig_tiny_images", 8, tfds_data_dir=str(tmp_path))
  assert x.shape == (3, 8, 8, 3)
  means = sorted(float(v) for v in x.mean(axis=(1, 2, 3)))
  np.testing.assert_allclose(means, [40 * i / 127.5 - 1 for i in range(3)], atol=1e-5)
  two = load_images("tfds:fsig_tiny_images:train[:2]", 8, tfds_data_dir=str(tmp_path))
  assert two.shape[0] == 2
  with pytest.raises(DataError, match="at least 5"):
    load_images("tfds:fsig_tiny_images", 8, min_images=5, tfds_data_dir=str(tmp_path))


# --------------------------------------------------------------------------- sampler


def _sampler_images(n=5, r=4):
  return np.random.default_rng(0).uniform(-1, 1, (n, r, r, 3)).astype(np.float32)


def test_sampler_is_a_function_of_seed_and_step():
  a = BatchSampler(_sampler_images(), batch_size=8, seed=3, flip=True)
  b = BatchSampler(_sampler_images(), batch_size=8, seed=3, flip=True)
  for _ in range(3):
    a.batch(1)  # Earlier calls do not change later batches.
  np.testing.assert_array_equal(a.batch(7), b.batch(7))
  assert not np.array_equal(a.batch(7), a.batch(8))
  assert not np.array_equal(a.batch(7), BatchSampler(_sampler_images(), 8, seed=4).batch(7))
  assert a.batch(7).shape == (8, 4, 4, 3)


def test_sampler_without_replacement_and_flips():
  imgs = _sampler_images(n=16)
  batch = BatchSampler(imgs, batch_size=16, seed=0).batch(0)
  key = lambda x: sorted(tuple(np.round(im.ravel(), 5)) for im in x)
  assert key(batch) == key(imgs)  # A permutation: no repeats when N >= batch_size.
  flipped = BatchSampler(imgs, batch_size=16, seed=0, flip=True).batch(0)
  n_flipped = sum(not any(np.array_equal(f, im) for im in imgs) for f in flipped)
  assert 0 < n_flipped < 16
  assert all(any(np.array_equal(f, im) or np.array_equal(f[:, ::-1], im) for im in imgs)
             for f in flipped)


def test_local_batches_concatenate_to_global():
  s = BatchSampler(_sampler_images(), batch_size=8, seed=1, flip=True)
  parts = [s.local_batch(5, i, 4) for i in range(4)]
  np.testing.assert_array_equal(np.concatenate(parts), s.batch(5))
  with pytest.raises(ValueError, match="divisible"):
    s.local_batch(5, 0, 3)
  with pytest.raises(ValueError, match="process_index"):
    s.local_batch(5, 4, 4)
