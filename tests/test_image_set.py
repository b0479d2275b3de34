"""Large source sets: held as uint8 or read from disk per batch, with identical batches."""
import types

import numpy as np
import pytest
from PIL import Image

from fsig_jax.data.image_set import ImageSet, load_image_set
from fsig_jax.data.images import DataError, load_images
from fsig_jax.data.sources import BatchSampler
from fsig_jax.engine import loop, run_config


def mixed_folder(folder, n=12):
  """n images of other sizes and modes (resized, cropped, grey, transparent on load)."""
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i in range(n):
    h, w = (20, 24) if i % 2 else (16, 16)
    px = rng.integers(0, 256, (h, w, 4), np.uint8)
    mode = ('RGB', 'L', 'RGBA')[i % 3]
    arr = {'RGB': px[..., :3], 'L': px[..., 0], 'RGBA': px}[mode]
    Image.fromarray(arr, mode).save(folder / f'{i:02d}.png')
  return folder


def test_a_held_set_is_uint8_and_gives_the_loaders_floats(tmp_path):
  folder = mixed_folder(tmp_path / 'imgs')
  held = load_image_set(str(folder), 16)
  assert not held.streamed and held.pixels.dtype == np.uint8
  assert held.nbytes == 12 * 16 * 16 * 3  # a quarter of float32's
  floats = load_images(str(folder), 16)
  np.testing.assert_array_equal(np.asarray(held), floats)
  np.testing.assert_array_equal(held[np.array([3, 1, 3])], floats[[3, 1, 3]])
  assert held[5].dtype == np.float32 and held[5].shape == (16, 16, 3)


def test_streamed_and_held_sets_give_identical_batches(tmp_path):
  """The same (seed, step) gives bit-identical batches held (uint8), streamed from disk,
  and from the float32 array of before; a streamed set holds no pixels."""
  folder = mixed_folder(tmp_path / 'imgs')
  held = load_image_set(str(folder), 16, stream_above=0)
  streamed = load_image_set(str(folder), 16, stream_above=11)
  assert streamed.streamed and streamed.nbytes == 0 and streamed.shape == (12, 16, 16, 3)
  assert not load_image_set(str(folder), 16, stream_above=12).streamed  # at most 12: held
  samplers = [BatchSampler(s, 5, seed=3, flip=True)
              for s in (held, streamed, load_images(str(folder), 16))]
  for step in (0, 1, 7, 1000):
    batches = [s.batch(step) for s in samplers]
    assert batches[0].dtype == np.float32
    np.testing.assert_array_equal(batches[0], batches[1])
    np.testing.assert_array_equal(batches[0], batches[2])
  np.testing.assert_array_equal(samplers[0].local_batch(4, 1, 5), samplers[1].local_batch(4, 1, 5))
  assert not np.array_equal(samplers[0].batch(0), samplers[0].batch(1))  # batches do differ
  np.testing.assert_array_equal(np.asarray(streamed), np.asarray(held))


def test_prepare_streams_a_folder_above_the_threshold(tmp_path):
  folder = mixed_folder(tmp_path / 'imgs', n=6)
  c = run_config.default_config()
  c.data.source = str(folder)
  c.data.stream_above = 5
  bundle = types.SimpleNamespace(config=types.SimpleNamespace(resolution=16),
                                 require=lambda net: None)  # prepare reads only these
  _, images = loop.prepare(c, bundle)
  assert isinstance(images, ImageSet) and images.streamed and len(images) == 6
  c.data.stream_above = 0
  _, images = loop.prepare(c, bundle)
  assert not images.streamed and images.pixels.dtype == np.uint8


def test_a_bad_file_in_a_streamed_folder_fails_at_the_start(tmp_path):
  folder = mixed_folder(tmp_path / 'imgs', n=6)
  (folder / '03.png').write_bytes(b'not a png')
  with pytest.raises(DataError, match=r'Cannot read image .*03\.png'):
    load_image_set(str(folder), 16, stream_above=2)
