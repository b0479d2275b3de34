"""The one image loader: folders, arrays and tfds datasets -> NHWC float32 in [-1, 1].

Every image source of the library goes through `load_images`, so all of them
get the same preprocessing (center-crop to a square, PIL LANCZOS resize, RGB,
[-1, 1]) and the same user-facing errors (`DataError`, naming the path, the
problem and the fix).

Preprocessing follows the data preparation of StyleGAN2-pytorch (rosinality,
`prepare_data.py`), which CDC (Ojha et al., CVPR 2021, "Few-shot Image
Generation via Cross-domain Correspondence") and its successors reuse:
`img.convert('RGB')`, torchvision `resize(img, size, Image.LANCZOS)` of the
shorter side, then `center_crop(img, size)`. We crop the centered square first
and resize it second: the same geometry, identical for square inputs (all
few-shot sets are square), and one resampling of the exact crop box instead of
a rounded intermediate size. Images already at the target size are not
resampled at all, so 256 px sets loaded at 256 keep their exact pixels.

Pixel values map uint8 v -> v / 127.5 - 1, the inverse of rosinality's
`transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))` after `ToTensor()`.
"""
import collections
import logging
import os
import pathlib
import re
from typing import Any, List, Optional, Sequence, Union

import numpy as np
from PIL import Image

from fsig_jax.errors import DataError
from fsig_jax.utils.files import writing
from fsig_jax.utils.images import from_uint8, to_uint8  # pylint: disable=unused-import (re-exported)

_log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
TFDS_PREFIX = "tfds:"
# Float arrays may exceed [-1, 1] by this much (float round-off of a conversion).
RANGE_TOLERANCE = 1e-3
# A source image whose square side is below resolution / SMALL_FACTOR is upsampled
# more than 4x: allowed (the user's choice) but logged as a warning.
SMALL_FACTOR = 4

_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_GRAYSCALE_CHOICES = ("convert", "error")
_ALPHA_CHOICES = ("composite", "error")


# ----------------------------------------------------------------------------- folders


def load_image_folder(path: Union[str, os.PathLike],
                      resolution: int,
                      *,
                      min_images: int = 1,
                      max_images: Optional[int] = None,
                      grayscale: str = "convert",
                      alpha: str = "composite",
                      recursive: bool = False,
                      uint8: bool = False) -> np.ndarray:
  """Loads the images of a folder as an (N, R, R, 3) float32 array in [-1, 1].

  Files are sorted by name (by relative path when `recursive`), so the result
  is deterministic; `max_images` keeps the first ones in that order. Accepted
  extensions are .png .jpg .jpeg .bmp .webp (any case); hidden files and other
  extensions are ignored. Each image is center-cropped to a square and resized
  to `resolution` with PIL LANCZOS, as rosinality/CDC `prepare_data.py` (see the
  module docstring). EXIF orientation is not applied, like those scripts.

  Args:
    path: the folder.
    resolution: output side R in pixels.
    min_images: fewer images than this is a DataError.
    max_images: load at most this many (the first by name); None loads all.
    grayscale: 'convert' (default) replicates grey images (L, I;16, grey
      palettes, ...) to RGB, as rosinality's `img.convert('RGB')`; 'error'
      refuses them, for sets that must be colour.
    alpha: 'composite' (default) composites images with transparent pixels on
      white. Plain `convert('RGB')` would drop the alpha and expose whatever
      colour the invisible pixels hold (often black), while transparent
      drawings and logos are made to be seen on a white page. 'error' refuses
      images with any transparent pixel. Fully opaque RGBA images are always
      accepted.
    recursive: also read subfolders (hidden ones skipped).
    uint8: return the pixels as uint8 [0, 255] (a quarter of float32's memory;
      `from_uint8` gives the float32 values exactly).

  Returns:
    float32 array of shape (N, resolution, resolution, 3) in [-1, 1] (uint8
    [0, 255] with `uint8`).

  Raises:
    DataError: missing folder, a file instead of a folder, no images,
      unreadable or corrupt image, refused grey / transparent image, or fewer
      than `min_images` images.
  """
  _check_options(resolution, min_images, max_images, grayscale, alpha)
  files = folder_image_files(path, min_images=min_images, max_images=max_images,
                             recursive=recursive)
  return load_image_files(files, resolution, grayscale=grayscale, alpha=alpha, where=str(path),
                          uint8=uint8)


def folder_image_files(path: Union[str, os.PathLike], *, min_images: int = 1,
                       max_images: Optional[int] = None,
                       recursive: bool = False) -> List[pathlib.Path]:
  """The files `load_image_folder` reads, in its order; a DataError when fewer than
  `min_images`."""
  folder = pathlib.Path(path)
  files = list_image_files(folder, recursive=recursive)
  if max_images is not None:
    files = files[:max_images]
  if len(files) < min_images:
    raise DataError(f"{folder} has {len(files)} image(s) but at least {min_images} are "
                    f"required (min_images={min_images}): add images or lower min_images.")
  return files


def load_image_files(files: Sequence[Union[str, os.PathLike]], resolution: int, *,
                     grayscale: str = "convert", alpha: str = "composite",
                     where: str = "", uint8: bool = False, warn: bool = True) -> np.ndarray:
  """Loads the given image files exactly as `load_image_folder` loads a folder's
  (uint8 [0, 255] with `uint8`); `warn=False` skips the small-image warning (for
  batches read from a folder that was checked once, `check_image_files`)."""
  out = np.empty((len(files), resolution, resolution, 3), np.uint8)
  small = []
  for i, file in enumerate(files):
    file = pathlib.Path(file)
    img = _open_image(file)
    if min(img.size) * SMALL_FACTOR < resolution:
      small.append(f"{file.name} ({img.size[0]}x{img.size[1]})")
    rgb = to_rgb(img, str(file), grayscale=grayscale, alpha=alpha)
    out[i] = np.asarray(center_crop_resize(rgb, resolution))
  if warn:
    _warn_small(small, resolution, where or "the given files")
  return out if uint8 else _uint8_to_float(out)


def check_image_files(files: Sequence[pathlib.Path], resolution: int, where: str) -> None:
  """Reads only the headers of `files` (fast): an unreadable or too large file is the
  DataError `load_image_files` would raise, and small images get its one warning. For
  sets read from disk batch by batch, so a bad file fails at the start, not mid-run."""
  small = []
  for file in files:
    size = _open_image(pathlib.Path(file), decode=False).size
    if min(size) * SMALL_FACTOR < resolution:
      small.append(f"{pathlib.Path(file).name} ({size[0]}x{size[1]})")
  _warn_small(small, resolution, where)


def list_image_files(folder: pathlib.Path, recursive: bool = False) -> List[pathlib.Path]:
  """The image files of `folder` sorted by (relative) name, or a DataError saying why none.

  Hidden files (and hidden folders when `recursive`) are skipped.
  """
  if not folder.exists():
    raise DataError(f"Image folder {folder} does not exist: check the path "
                    f"(relative paths are resolved from {pathlib.Path.cwd()}).")
  if folder.is_file():
    raise DataError(f"{folder} is a file, not a folder: pass the folder that holds the "
                    f"images ({folder.parent}).")
  if not folder.is_dir():
    raise DataError(f"{folder} is not a folder: pass a folder of images.")
  candidates = folder.rglob("*") if recursive else folder.iterdir()
  files = []
  n_dirs = 0
  for p in candidates:
    rel = p.relative_to(folder)
    if any(part.startswith(".") for part in rel.parts):
      continue
    if p.is_dir():
      n_dirs += 1
    elif p.is_file():
      files.append(p)
  images = sorted((p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS),
                  key=lambda p: p.relative_to(folder).as_posix())
  if images:
    return images
  supported = " ".join(IMAGE_EXTENSIONS)
  if files:
    counts = collections.Counter(p.suffix.lower() or "(no extension)" for p in files)
    found = ", ".join(f"{ext} ({n})" for ext, n in counts.most_common())
    raise DataError(f"{folder} has no image files: found {len(files)} file(s) with "
                    f"extensions {found}; supported are {supported}. Convert the "
                    "images or pass the folder that holds them.")
  hint = (f" It has {n_dirs} subfolder(s): pass recursive=True or one of them."
          if n_dirs and not recursive else "")
  raise DataError(f"Image folder {folder} is empty (no {supported} files).{hint}")


def _open_image(file: pathlib.Path, decode: bool = True) -> Image.Image:
  """Opens and fully decodes one image file (only its header without `decode`); corrupt,
  truncated or too large files raise a DataError naming the file and the fix."""
  try:
    with Image.open(file) as img:
      if decode:
        img.load()  # Decodes now: a truncated JPEG raises here, not later.
      return img
  except Image.DecompressionBombError as e:
    size = re.search(r"\((\d+) pixels\)", str(e))
    size = f"{int(size.group(1)):,} pixels" if size else "its size"
    raise DataError(f"Image {file} is too large to load: {size}, over PIL's decompression-bomb "
                    f"limit of {2 * Image.MAX_IMAGE_PIXELS:,} pixels. Resize it (training uses a "
                    "few hundred pixels a side) or move it out of the folder; if you trust the "
                    "file, raise PIL.Image.MAX_IMAGE_PIXELS.") from e
  except (OSError, Image.UnidentifiedImageError, SyntaxError, ValueError) as e:
    raise DataError(f"Cannot read image {file}: {type(e).__name__}: {e}. The file is "
                    "corrupt, truncated or not an image: re-export or delete it.") from e


def _warn_small(small: Sequence[str], resolution: int, where: str) -> None:
  """One warning for all images upsampled more than SMALL_FACTOR times."""
  if small:
    shown = ", ".join(small[:5]) + (", ..." if len(small) > 5 else "")
    _log.warning("%d image(s) in %s are smaller than resolution/%d = %d px and are "
                 "upsampled more than %dx to %d px: %s", len(small), where, SMALL_FACTOR,
                 resolution // SMALL_FACTOR, SMALL_FACTOR, resolution, shown)


# ----------------------------------------------------------------------------- pixels


def to_rgb(img: Image.Image, name: str, *, grayscale: str = "convert",
           alpha: str = "composite") -> Image.Image:
  """Converts a decoded PIL image to mode RGB under the grey / alpha policies.

  16-bit grey (I;16, I) is scaled by 255/65535 (PIL's own convert would clip
  it to 255). Palette (P) images count as grey when every pixel has R = G = B.
  See `load_image_folder` for the policies and their defaults.
  """
  mode = img.mode
  if mode in ("P", "PA"):
    img = img.convert("RGBA" if (mode == "PA" or "transparency" in img.info) else "RGB")
    arr = np.asarray(img)
    grey = bool(np.all(arr[..., 0] == arr[..., 1]) and np.all(arr[..., 1] == arr[..., 2]))
  else:
    grey = mode in _GREY_MODES
  if grey and grayscale == "error":
    raise DataError(f"{name} is a greyscale image (mode {mode}) and grayscale='error': "
                    "pass grayscale='convert' to replicate it to RGB, or remove it.")
  if img.mode.startswith("I") or img.mode == "F":
    scale = 255.0 / 65535.0 if img.mode != "F" else 1.0
    arr = np.asarray(img, np.float64) * scale
    img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
  has_alpha = img.mode in _ALPHA_MODES or "transparency" in img.info
  if has_alpha:
    rgba = img.convert("RGBA")
    if np.asarray(rgba)[..., 3].min() < 255:
      if alpha == "error":
        raise DataError(f"{name} has transparent pixels (mode {mode}) and alpha='error': "
                        "pass alpha='composite' to composite it on white, or flatten it.")
      white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
      return Image.alpha_composite(white, rgba).convert("RGB")
    return rgba.convert("RGB")
  return img if img.mode == "RGB" else img.convert("RGB")


def center_crop_resize(img: Image.Image, resolution: int) -> Image.Image:
  """Center-crops the largest square and resizes it to `resolution` with PIL LANCZOS.

  The crop offset rounds like torchvision `center_crop` (used by rosinality
  `prepare_data.py`); an image already `resolution` square is returned as is.
  """
  w, h = img.size
  s = min(w, h)
  if (w, h) != (s, s):
    left, top = int(round((w - s) / 2.0)), int(round((h - s) / 2.0))
    img = img.crop((left, top, left + s, top + s))
  if s != resolution:
    img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
  return img


_uint8_to_float = from_uint8


# ----------------------------------------------------------------------------- dispatch


def load_images(source: Any,
                resolution: int,
                *,
                min_images: int = 1,
                max_images: Optional[int] = None,
                grayscale: str = "convert",
                alpha: str = "composite",
                recursive: bool = False,
                tfds_data_dir: Optional[str] = None,
                tfds_image_key: str = "image",
                uint8: bool = False) -> np.ndarray:
  """Loads images from any supported source as (N, R, R, 3) float32 in [-1, 1].

  `source` is one of:
    * a numpy / jax array, NHWC or NCHW (found by which axis has 3 channels;
      1 channel counts as grey): uint8 maps to [-1, 1]; floats must already be
      in [-1, 1]: data that looks like [0, 1] or [0, 255] is refused with the
      conversion to use, never guessed;
    * a folder path (str / PathLike): `load_image_folder`;
    * "tfds:NAME[:SPLIT]" (SPLIT defaults to train and may be a slice such as
      train[:100]): a TensorFlow Datasets dataset already prepared under
      `tfds_data_dir` (None: tfds' default), read with `download=False` so no
      network access is ever attempted.
  Array and tfds images of another size are cropped and resized exactly like
  folder images (per image, PIL LANCZOS).

  Args:
    source: see above.
    resolution: output side R in pixels.
    min_images, max_images, grayscale, alpha, recursive: as `load_image_folder`
      (`recursive` only applies to folders).
    tfds_data_dir: root folder of prepared tfds datasets.
    tfds_image_key: the image feature of the tfds examples.
    uint8: return 8-bit sources (folders, tfds, uint8 arrays) as uint8 [0, 255],
      a quarter of float32's memory (`from_uint8` gives the float32 values
      exactly); float arrays stay float32.

  Returns:
    float32 array of shape (N, resolution, resolution, 3) in [-1, 1] (see `uint8`).

  Raises:
    DataError: for every data problem, naming the source and the fix.
  """
  kw = dict(min_images=min_images, max_images=max_images, grayscale=grayscale, alpha=alpha,
            uint8=uint8)
  if isinstance(source, str) and source.startswith(TFDS_PREFIX):
    _check_options(resolution, **kw)
    return _load_tfds(source, resolution, data_dir=tfds_data_dir, image_key=tfds_image_key, **kw)
  if isinstance(source, (str, os.PathLike)):
    return load_image_folder(source, resolution, recursive=recursive, **kw)
  if isinstance(source, np.ndarray) or hasattr(source, "__array__"):
    _check_options(resolution, **kw)
    return _load_array(np.asarray(source), resolution, **kw)
  raise DataError(f"Cannot load images from a {type(source).__name__}: pass an NHWC/NCHW "
                  "array, a folder path or 'tfds:NAME[:SPLIT]'.")


def _check_options(resolution, min_images, max_images, grayscale, alpha, uint8=False) -> None:
  """Validates the shared keyword options (programming errors, so plain ValueError)."""
  del uint8
  if not isinstance(resolution, (int, np.integer)) or resolution < 1:
    raise ValueError(f"resolution must be a positive int, got {resolution!r}.")
  if max_images is not None and max_images < min_images:
    raise ValueError(f"max_images={max_images} is below min_images={min_images}.")
  if grayscale not in _GRAYSCALE_CHOICES:
    raise ValueError(f"grayscale must be one of {_GRAYSCALE_CHOICES}, got {grayscale!r}.")
  if alpha not in _ALPHA_CHOICES:
    raise ValueError(f"alpha must be one of {_ALPHA_CHOICES}, got {alpha!r}.")


# ----------------------------------------------------------------------------- arrays


def _load_array(x: np.ndarray, resolution: int, *, min_images: int,
                max_images: Optional[int], grayscale: str, alpha: str,
                uint8: bool = False) -> np.ndarray:
  """Validates an image array, converts it to NHWC float32 [-1, 1] and resizes it if needed."""
  del alpha  # Arrays with an alpha channel are refused below.
  if x.ndim != 4:
    raise DataError(f"Image array has shape {x.shape}; expected 4 axes NHWC or NCHW "
                    "(add a batch axis with x[None] for a single image).")
  if x.shape[-1] in (1, 3):
    layout = "NHWC"
  elif x.shape[1] in (1, 3):
    layout, x = "NCHW", np.transpose(x, (0, 2, 3, 1))
  else:
    raise DataError(f"Image array has shape {x.shape}: no axis 1 or 3 with 3 (RGB) or 1 "
                    "(grey) channels. Pass NHWC or NCHW RGB images (drop an alpha "
                    "channel with x[..., :3] after compositing it).")
  if max_images is not None:
    x = x[:max_images]
  if x.shape[0] < min_images:
    raise DataError(f"Image array has {x.shape[0]} image(s) but at least {min_images} are "
                    f"required (min_images={min_images}).")
  if x.shape[-1] == 1:
    if grayscale == "error":
      raise DataError(f"Image array of shape {x.shape} ({layout}) is greyscale and "
                      "grayscale='error': pass grayscale='convert' or RGB images.")
    x = np.repeat(x, 3, axis=-1)
  if x.dtype == np.uint8:
    is_uint8 = True
  elif np.issubdtype(x.dtype, np.floating):
    is_uint8 = False
    x = x.astype(np.float32)
    _check_float_range(x)
    x = np.clip(x, -1.0, 1.0)
  else:
    raise DataError(f"Image array has dtype {x.dtype}; expected uint8 [0, 255] or float "
                    "[-1, 1] (for 16-bit data use (x / 65535) * 2 - 1).")
  if x.shape[1:3] != (resolution, resolution):
    _log.info("Resizing %d array images from %dx%d to %dx%d (center crop + PIL LANCZOS).",
              x.shape[0], x.shape[1], x.shape[2], resolution, resolution)
    x = _resize_array(x, resolution)
  if is_uint8:
    return np.ascontiguousarray(x) if uint8 else _uint8_to_float(x)
  return np.ascontiguousarray(x, np.float32)


def _check_float_range(x: np.ndarray) -> None:
  """Accepts float images only in [-1, 1]; anything else is refused with the conversion to use."""
  if x.size == 0:
    return
  if not np.all(np.isfinite(x)):
    raise DataError("Float image array contains NaN or inf values.")
  lo, hi = float(x.min()), float(x.max())
  if lo >= 0.0 and hi <= 1.0 + RANGE_TOLERANCE and hi > 0.0:
    raise DataError(f"Float image array has values in [{lo:.4g}, {hi:.4g}], which looks like "
                    "[0, 1] data; images must be in [-1, 1]: pass x * 2 - 1.")
  if lo < -1.0 - RANGE_TOLERANCE or hi > 1.0 + RANGE_TOLERANCE:
    hint = (" It looks like [0, 255] data: pass x / 127.5 - 1 (or x.astype(np.uint8))."
            if lo >= 0.0 and hi <= 255.0 + RANGE_TOLERANCE else "")
    raise DataError(f"Float image array has values in [{lo:.4g}, {hi:.4g}], outside [-1, 1] "
                    f"(tolerance {RANGE_TOLERANCE}).{hint}")


def _resize_array(x: np.ndarray, resolution: int) -> np.ndarray:
  """Center-crop + LANCZOS resize of NHWC uint8 (as RGB) or float [-1, 1] (per channel, mode F)."""
  out_dtype = np.uint8 if x.dtype == np.uint8 else np.float32
  out = np.empty((x.shape[0], resolution, resolution, 3), out_dtype)
  for i, im in enumerate(x):
    if out_dtype == np.uint8:
      out[i] = np.asarray(center_crop_resize(Image.fromarray(im, "RGB"), resolution))
    else:
      for c in range(3):
        out[i, ..., c] = np.asarray(center_crop_resize(Image.fromarray(im[..., c], "F"),
                                                       resolution))
  return out if out_dtype == np.uint8 else np.clip(out, -1.0, 1.0)  # LANCZOS overshoots.


# ----------------------------------------------------------------------------- tfds


def _load_tfds(spec: str, resolution: int, *, data_dir: Optional[str], image_key: str,
               min_images: int, max_images: Optional[int], grayscale: str,
               alpha: str, uint8: bool = False) -> np.ndarray:
  """Reads 'tfds:NAME[:SPLIT]' from a locally prepared TensorFlow Datasets dataset."""
  import tensorflow_datasets as tfds  # Heavy (TensorFlow): imported only when used.

  name, _, split = spec[len(TFDS_PREFIX):].partition(":")
  split = split or "train"
  if not name:
    raise DataError(f"{spec!r} names no dataset: use 'tfds:NAME[:SPLIT]', e.g. 'tfds:mnist:train'.")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DataError(f"{spec!r}: tfds has no dataset {name!r}: check the name with "
                    "tfds.list_builders().") from e
  root = getattr(builder, "_data_dir_root", None) or data_dir or tfds.core.constants.DATA_DIR
  if not builder.is_prepared():
    raise DataError(
        f"{spec!r}: tfds dataset {name!r} is not prepared in data_dir {root} (looked in "
        f"{builder.data_dir}). This loader never downloads. Prepare it once with "
        f"`tfds build {name} --data_dir={root}` (or tfds.builder({name!r}, data_dir=...)"
        ".download_and_prepare(), with manual files where the dataset needs them), or pass "
        "tfds_data_dir= where it is already prepared.")
  features = builder.info.features
  if image_key not in features:
    raise DataError(f"{spec!r} has no feature {image_key!r}; its features are "
                    f"{sorted(features.keys())}: pass tfds_image_key=.")
  try:
    ds = tfds.load(name, split=split, data_dir=data_dir, download=False)
  except (ValueError, KeyError) as e:
    raise DataError(f"{spec!r}: cannot read split {split!r} ({e}); available splits are "
                    f"{sorted(builder.info.splits.keys())}.") from e
  if max_images is not None:
    ds = ds.take(max_images)
  images, small = [], []
  for i, example in enumerate(tfds.as_numpy(ds)):
    where = f"{spec} example {i}"
    img = _array_to_pil(np.asarray(example[image_key]), where)
    if min(img.size) * SMALL_FACTOR < resolution:
      small.append(f"example {i} ({img.size[0]}x{img.size[1]})")
    rgb = to_rgb(img, where, grayscale=grayscale, alpha=alpha)
    images.append(np.asarray(center_crop_resize(rgb, resolution)))
  if len(images) < min_images:
    raise DataError(f"{spec!r} has {len(images)} image(s) but at least {min_images} are "
                    f"required (min_images={min_images}).")
  _warn_small(small, resolution, spec)
  if not images:
    return np.zeros((0, resolution, resolution, 3), np.uint8 if uint8 else np.float32)
  return np.stack(images) if uint8 else _uint8_to_float(np.stack(images))


def _array_to_pil(a: np.ndarray, where: str) -> Image.Image:
  """A decoded HWC uint8 tfds image (1, 3 or 4 channels) as a PIL image."""
  if a.ndim == 3 and a.shape[-1] == 1:
    a = a[..., 0]
  mode = None
  if a.ndim == 2:
    mode = "L"
  elif a.ndim == 3:
    mode = {3: "RGB", 4: "RGBA"}.get(a.shape[-1])
  if a.dtype != np.uint8 or mode is None:
    raise DataError(f"{where}: image of shape {a.shape} and dtype {a.dtype} is not a uint8 "
                    "grey, RGB or RGBA image.")
  return Image.fromarray(a, mode)


# ----------------------------------------------------------------------------- writing


def write_image_folder(images: Any, path: Union[str, os.PathLike],
                       prefix: str = "", names: Optional[Sequence[str]] = None
                       ) -> List[pathlib.Path]:
  """Writes NHWC [-1, 1] images as PNGs `{prefix}{index:05d}.png` (uint8 by rounding),
  or `{prefix}{name}.png` with `names` (one per image, e.g. the inputs' stems).

  The folder is created if needed; values are converted with `to_uint8`
  (round((x + 1) * 127.5), clipped), so `load_image_folder` reads them back
  to within half a quantization step (1/255).

  Returns:
    The written paths, in image order.

  Raises:
    WriteError: the folder cannot be written (a file in the way, read-only, disk full).
  """
  x = np.asarray(images)
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"write_image_folder expects NHWC RGB images, got shape {x.shape}.")
  folder = pathlib.Path(path)
  width = max(5, len(str(max(len(x) - 1, 0))))
  if names is not None and len(names) != len(x):
    raise ValueError(f"write_image_folder got {len(names)} names for {len(x)} images.")
  paths = []
  with writing(str(folder)):  # a read-only folder, a full disk: one WriteError line
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(to_uint8(x)):
      p = folder / f"{prefix}{names[i] if names is not None else f'{i:0{width}d}'}.png"
      Image.fromarray(im, "RGB").save(p)
      paths.append(p)
  return paths
