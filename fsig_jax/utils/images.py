"""Image grids: the one way fsig-jax turns image batches into PNG files."""
import io
import math
from typing import Optional

import numpy as np
from PIL import Image

from fsig_jax.utils.files import write_atomic


def to_uint8(images) -> np.ndarray:
  """NHWC floats in [-1, 1] -> uint8 (clipped), as the official codes save images."""
  x = np.asarray(images, dtype=np.float32)
  return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(x: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1] (rosinality's ToTensor + Normalize(0.5, 0.5))."""
  return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def make_grid(images, ncol: Optional[int] = None, pad: int = 2) -> np.ndarray:
  """Tiles NHWC images (floats in [-1, 1] or uint8) into one HWC uint8 array."""
  x = np.asarray(images)
  x = x if x.dtype == np.uint8 else to_uint8(x)
  if x.ndim != 4 or x.shape[0] == 0:
    raise ValueError(f'make_grid needs a non-empty NHWC batch, got shape {x.shape}')
  n, h, w, c = x.shape
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, q = divmod(i, ncol)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + q * (w + pad):pad + q * (w + pad) + w] = x[i]
  return grid


def save_png(path: str, image: Image.Image) -> str:
  """Writes a PIL image as PNG atomically (temp file then rename), creating the folder;
  a write failure (read-only folder, full disk, a file in the way) is one WriteError
  naming the path and the fix, and leaves no temporary file. Returns the path."""
  return write_atomic(path, image.save, suffix='.tmp.png')


def _pil(image: np.ndarray) -> Image.Image:
  """An HWC uint8 array (C = 1, 3 or 4) as a PIL image (grayscale for C = 1)."""
  return Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image)


def png_bytes(image: np.ndarray) -> bytes:
  """One HWC uint8 image (C = 1, 3 or 4) as PNG file bytes (TensorBoard's image summaries)."""
  buf = io.BytesIO()
  _pil(image).save(buf, 'PNG')
  return buf.getvalue()


def save_grid(path: str, images, ncol: Optional[int] = None, pad: int = 2) -> str:
  """Writes a PNG grid (atomically: `save_png`) and returns the path. One image with
  pad=0 is written as a plain PNG of that image."""
  return save_png(path, _pil(make_grid(images, ncol, pad)))


def save_labeled_grid(path: str, blocks) -> str:
  """A PNG of labelled rows: `blocks` is [(label, NHWC images), ...], every row the
  same number of images; the labels are drawn left of their rows. Atomic, like
  `save_grid`; returns the path."""
  from PIL import ImageDraw  # pylint: disable=g-import-not-at-top
  labels = [label for label, _ in blocks]
  ncol = len(blocks[0][1])
  grid = make_grid(np.concatenate([np.asarray(imgs) for _, imgs in blocks]), ncol=ncol)
  row_h = (grid.shape[0] - 2) // len(blocks)
  label_w = 8 + 6 * max(len(l) for l in labels)
  canvas = Image.new('RGB', (label_w + grid.shape[1], grid.shape[0]), (255, 255, 255))
  canvas.paste(Image.fromarray(grid), (label_w, 0))
  draw = ImageDraw.Draw(canvas)
  for i, label in enumerate(labels):
    draw.text((4, 2 + i * row_h + row_h // 2 - 5), label, fill=(0, 0, 0))
  return save_png(path, canvas)
