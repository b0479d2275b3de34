"""evaluate(): sample a model and score the samples (FID-VGG, KID-VGG, intra-LPIPS).

One entry point for every evaluation in fsig-jax (the `launch/eval.py` tool,
periodic evaluation during training, `benchmarks/fsig_table.py`). It computes
nothing itself: the numbers come from `fid`, `kid` and `intra_lpips`.

Protocol:
  * samples: `num_samples` images of the bundle's G_ema from latents
    z_i ~ N(0, I) drawn from fold_in(PRNGKey(seed), i), with random noise
    inputs (also keyed by the seed) and no truncation, as the official metric
    codes (ada-pytorch `metric_utils`, rosinality/CDC `generate.py`) sample;
    each image is quantized to uint8 and back, i.e. scored exactly as a saved
    PNG would be. The same seed gives the same latents and noise for every
    model of one architecture, so methods are compared on the same latents.
  * FID-VGG / KID-VGG: Fréchet distance / KID between the samples' features and
    a reference set's, by default with `features.vgg16_features()` (relu5_3 of
    the LPIPS VGG16 trunk). These are labeled "FID-VGG" / "KID-VGG" everywhere
    because they are NOT comparable with published Inception FIDs; pass
    `extractor=feature_extractor(path)` with pytorch-fid's Inception weights
    file for standard FID / KID (reported as 'FID' / 'KID').
    The reference is a held-out set (a folder, an array, `derived:NAME:test`)
    or, when there is none, the few-shot training images themselves (then the
    result says so: `reference_kind = 'few-shot training images'`). Reference
    features and statistics are cached in `cache_dir` (see `image_sources`).
    With fewer images than feature dimensions (512) a covariance is singular;
    the result then carries a note.
  * intra-LPIPS: CDC's intra-cluster LPIPS of the samples around the few-shot
    training images (`intra_lpips.intra_cluster_lpips`, 'vgg' LPIPS).

Image sources (`reference`, `few_shot`) are anything `image_sources.as_source`
takes: a folder, a 'derived:NAME:SUBSET' target, 'tfds:NAME[:SPLIT]', arrays,
or (reference only) an `.npz` statistics file; all are loaded at the model's
resolution. `default_sources` is the adaptation runs' policy for choosing them;
`results` prints and stores the returned dict.
"""
import os
import pathlib
import time
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import jax
import numpy as np
import scipy.linalg

from fsig_jax.data import targets
from fsig_jax.data.images import DataError, list_image_files, load_image_files
from fsig_jax.metrics import features as features_lib
from fsig_jax.metrics import fid as fid_lib
from fsig_jax.metrics import inception as inception_lib
from fsig_jax.metrics import intra_lpips as intra_lpips_lib
from fsig_jax.metrics import kid as kid_lib
# Re-exported: callers use evaluate.ImageSource / as_source / summary / json_ready / scalars.
# pylint: disable=unused-import
from fsig_jax.metrics.image_sources import ImageSource, as_source
from fsig_jax.metrics.results import INTRA_LPIPS, json_ready, scalars, summary
# pylint: enable=unused-import
from fsig_jax.utils.images import to_uint8

# 'fid_vgg' / 'kid_vgg' name the metric together with the default VGG16 features.
_METRIC_ALIASES = {'fid': 'fid', 'fid_vgg': 'fid', 'kid': 'kid', 'kid_vgg': 'kid',
                   'intra_lpips': 'intra_lpips'}
DEFAULT_NUM_SAMPLES = 1000  # CDC Sec. 4.2: intra-LPIPS over 1000 generated images.
# A training set of at most this many images counts as few-shot (intra-LPIPS centers).
FEW_SHOT_MAX = 100

REF_HELD_OUT = 'held-out set'
REF_FEW_SHOT = 'few-shot training images'
REF_STATS = 'statistics file'
VGG_NOTE = ('FID-VGG / KID-VGG use VGG16 features (relu5_3 of the LPIPS trunk), not '
            'Inception-v3: compare them only with each other, never with published FIDs.')


def feature_extractor(inception_weights: Union[None, str, os.PathLike] = None
                      ) -> features_lib.FeatureExtractor:
  """The FID / KID network: FID's Inception-v3 (`inception.inception_features`) from
  pytorch-fid's weights file when a path is given, else VGG16 ('FID-VGG').

  Raises CheckpointError naming the file when the weights cannot be read.
  """
  if inception_weights:
    return inception_lib.inception_features(os.fspath(inception_weights))
  return features_lib.vgg16_features()


def sample_latents(bundle, num: int, seed: int) -> jax.Array:
  """The (num, z_dim) latents evaluate() scores for `seed`.

  Latent i is drawn from fold_in(PRNGKey(seed), i), so the first k latents are
  the same for any num >= k (sample grids show the first evaluated samples).
  """
  key = jax.random.PRNGKey(seed)
  z_dim = bundle.config.z_dim
  return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (z_dim,)))(
      jax.numpy.arange(num))


def generate_samples(bundle, z, seed: int = 0, batch_size: int = 32) -> np.ndarray:
  """G_ema images of latents z, random noise keyed by (seed, batch), quantized as PNGs.

  Returns (N, R, R, 3) float32 in [-1, 1] on the uint8 grid. Batches are padded
  to `batch_size`, so the generator compiles once; for one batch_size, image i
  depends only on z[i], the seed and i (a prefix of z gives a prefix of images).
  """
  z = np.asarray(z, np.float32)
  noise_key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
  out = []
  for i, start in enumerate(range(0, len(z), batch_size)):
    chunk = z[start:start + batch_size]
    n = len(chunk)
    if n < batch_size:
      chunk = np.concatenate([chunk, np.zeros((batch_size - n, z.shape[1]), np.float32)])
    imgs = bundle.generate(chunk, noise_mode='random', key=jax.random.fold_in(noise_key, i))
    out.append(to_uint8(np.asarray(imgs)[:n]))
  if not out:
    return np.zeros((0, bundle.config.resolution, bundle.config.resolution, 3), np.float32)
  return np.concatenate(out).astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def resolve_metrics(metrics, extractor, reference: Optional[ImageSource],
                    few_shot: Optional[ImageSource]) -> Tuple[str, ...]:
  """The metrics to compute ('fid', 'kid', 'intra_lpips'), or a ValueError saying why not.

  `metrics` None means all that the sources allow; `extractor` None means VGG16.
  """
  fid_ref = reference or few_shot
  if metrics is None or metrics == 'auto':
    chosen = []
    if fid_ref is not None:
      chosen.append('fid')
      if not fid_ref.is_stats_file:
        chosen.append('kid')
    if few_shot is not None:
      chosen.append('intra_lpips')
    if not chosen:
      raise ValueError('Nothing to evaluate: pass a reference image set (FID-VGG, KID-VGG) '
                       'and/or the few-shot training images (intra-LPIPS).')
    return tuple(chosen)
  if isinstance(metrics, str):
    metrics = [m.strip() for m in metrics.split(',') if m.strip()]
  out = []
  for m in metrics:
    if m not in _METRIC_ALIASES:
      raise ValueError(f'Unknown metric {m!r}; choose from {sorted(_METRIC_ALIASES)}.')
    if m.endswith('_vgg') and extractor is not None and extractor.name != features_lib.VGG16_NAME:
      raise ValueError(f'Metric {m!r} means VGG16 features, but the extractor is '
                       f'{extractor.name!r}: ask for {m[:-4]!r}.')
    name = _METRIC_ALIASES[m]
    if name in ('fid', 'kid') and fid_ref is None:
      raise ValueError(f'{m} needs a reference: pass reference= (a held-out image set) or '
                       'few_shot= (then the few-shot images are the reference).')
    if name == 'intra_lpips' and few_shot is None:
      raise ValueError('intra_lpips needs the few-shot training images (few_shot=): they are '
                       'the cluster centers.')
    if name not in out:
      out.append(name)
  if not out:
    raise ValueError('No metric asked for.')
  return tuple(out)


def evaluate(bundle, *, reference=None, few_shot=None, num_samples: int = DEFAULT_NUM_SAMPLES,
             seed: int = 0, metrics: Union[None, str, Sequence[str]] = None,
             cache_dir: Optional[str] = None, batch_size: int = 32,
             extractor: Optional[features_lib.FeatureExtractor] = None) -> Dict[str, Any]:
  """Scores `num_samples` G_ema samples of `bundle`; returns a JSON-ready dict.

  Args:
    bundle: a ModelBundle (its G_ema is sampled).
    reference: the held-out images FID-VGG / KID-VGG compare with (see the
      module docstring for the accepted sources); None: the few-shot images.
    few_shot: the few-shot training images, the intra-LPIPS cluster centers
      (and the FID reference when `reference` is None).
    num_samples: generated images (CDC: 1000; FID needs at least 2).
    seed: seeds the latents and noise; same seed, same latents for every model.
    metrics: any of 'fid_vgg' (or 'fid'), 'kid_vgg' (or 'kid'), 'intra_lpips',
      as a sequence or comma-separated; None: all that the given sources allow.
    cache_dir: where reference features / statistics are cached; None: no cache.
    batch_size: images (or LPIPS pairs) per generator / feature-network call.
    extractor: the FID/KID feature network; default `features.vgg16_features()`.

  Returns:
    {'FID-VGG': float, 'KID-VGG': float, 'intra-LPIPS': float,
     'intra-LPIPS_std': float, 'metrics': [the metric keys present], counts
     ('num_samples', 'reference_count', 'few_shot_count'), labels
     ('reference', 'reference_kind', 'few_shot', 'feature_network', 'notes'),
     'seed', 'resolution', 'model', 'seconds'}. With Inception features the keys
    are 'FID' / 'KID'.

  Raises:
    ValueError (DataError for data problems): unknown metric, a metric without
    its data, fewer than 2 samples for a covariance, images of mixed sizes, a
    cache or statistics file from another feature network or resolution.
  """
  t0 = time.time()
  extractor = extractor or features_lib.vgg16_features()
  res = bundle.config.resolution
  few = as_source(few_shot, res)
  ref = as_source(reference, res)
  chosen = resolve_metrics(metrics, extractor, ref, few)
  fid_ref = ref or few
  if 'fid' in chosen and num_samples < 2:
    raise ValueError(f'{extractor.label} needs a covariance of the samples\' features: '
                     f'num_samples must be at least 2, got {num_samples}.')
  if 'fid' in chosen and fid_ref.count is not None and fid_ref.count < 2:
    raise ValueError(f'{extractor.label} needs a covariance of the reference features: '
                     f'{fid_ref.description} has {fid_ref.count} image(s), at least 2 are needed.')
  # The reference first: its problems (cache of another network, ...) surface before sampling.
  ref_stats = fid_ref.stats(extractor, batch_size, cache_dir) if 'fid' in chosen else None
  ref_feats = fid_ref.features(extractor, batch_size, cache_dir) if 'kid' in chosen else None
  samples = generate_samples(bundle, sample_latents(bundle, num_samples, seed), seed, batch_size)
  out: Dict[str, Any] = {}
  keys, notes = [], []
  if 'fid' in chosen or 'kid' in chosen:
    gen_feats = features_lib.extract_features(extractor, samples, batch_size)
    scores = fid_kid(extractor, gen_feats, ref_stats, ref_feats, seed)
    out.update(scores)
    keys += list(scores)
    if 'fid' in chosen and min(ref_stats.count, num_samples) <= extractor.dim:
      notes.append(f'{min(ref_stats.count, num_samples)} images for {extractor.dim}-d features: '
                   f'a covariance is singular, so {extractor.label} is biased upwards and '
                   'comparable only between models scored with the same counts and reference.')
  if 'intra_lpips' in chosen:
    # Its own batch (at most 16): clusters are small and each is padded to one batch.
    res_ = intra_lpips_lib.intra_cluster_lpips(samples, few.images(), seed=seed,
                                               batch_size=min(batch_size, 16))
    out[INTRA_LPIPS] = res_.mean
    out[f'{INTRA_LPIPS}_std'] = res_.std
    out['intra_lpips_cluster_sizes'] = [int(s) for s in res_.cluster_sizes]
    keys += [INTRA_LPIPS, f'{INTRA_LPIPS}_std']
  out['metrics'] = keys
  out['num_samples'] = int(num_samples)
  out['seed'] = int(seed)
  out['resolution'] = int(res)
  if 'fid' in chosen or 'kid' in chosen:
    out['feature_network'] = extractor.name
    out['reference'] = fid_ref.description
    out['reference_kind'] = (REF_STATS if fid_ref.is_stats_file else
                             REF_HELD_OUT if ref is not None else REF_FEW_SHOT)
    out['reference_count'] = fid_ref.count
    if extractor.name == features_lib.VGG16_NAME:
      notes.insert(0, VGG_NOTE)
  if few is not None:
    out['few_shot'] = few.description
    out['few_shot_count'] = len(few.images()) if few.count is None else few.count
  if notes:
    out['notes'] = notes
  out['model'] = getattr(bundle, 'source', '')
  out['seconds'] = round(time.time() - t0, 1)
  return out


def fid_kid(extractor, feats, ref_stats, ref_feats, seed: int) -> Dict[str, float]:
  """FID (when `ref_stats` is given) and KID (when `ref_feats` is) of `feats`
  against a reference, keyed by the metric labels, in that order."""
  out = {}
  if ref_stats is not None:
    with warnings.catch_warnings():  # singular covariances: fid handles them (eps * I)
      warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)
      out[extractor.label] = fid_lib.frechet_distance(
          fid_lib.FeatureStats.from_features(feats, extractor.name), ref_stats)
  if ref_feats is not None:
    out[kid_lib.kid_label(extractor.name)] = kid_lib.kernel_inception_distance(
        feats, ref_feats, seed=seed)
  return out


def real_floor(real: Union[str, os.PathLike], reference, *, num_images: int = 2000,
               seed: int = 0, resolution: int, cache_dir: Optional[str] = None,
               batch_size: int = 32,
               extractor: Optional[features_lib.FeatureExtractor] = None) -> Dict[str, Any]:
  """FID / KID of `num_images` real images (drawn at random from the folder
  `real`) against `reference`: the score a perfect generator of the training
  distribution would get with this many samples (e.g. anime train vs test faces).

  Model cards report it next to a model's score, since FID-VGG has no absolute
  scale and is biased by the sample count.
  """
  extractor = extractor or features_lib.vgg16_features()
  files = list_image_files(pathlib.Path(real))
  if len(files) < num_images:
    raise DataError(f'{real} has {len(files)} images; the floor needs num_images={num_images} '
                    '(pass fewer)')
  pick = np.sort(np.random.default_rng(seed).choice(len(files), num_images, replace=False))
  images = load_image_files([files[i] for i in pick], resolution)
  ref = as_source(reference, resolution)
  feats = features_lib.extract_features(extractor, images, batch_size)
  scores = fid_kid(extractor, feats, ref.stats(extractor, batch_size, cache_dir),
                    ref.features(extractor, batch_size, cache_dir), seed)
  return {**scores, 'metrics': list(scores), 'real': os.fspath(real),
          'num_images': int(num_images), 'seed': int(seed), 'reference': ref.description,
          'reference_count': ref.count, 'feature_network': extractor.name}


def default_sources(data_source: Any, reference: Any = 'auto',
                    few_shot: Any = 'auto') -> Tuple[Any, Any]:
  """(reference, few_shot) for a run trained on `data_source`, filling in 'auto'.

  'auto' reference: 'derived:NAME:test' for 'derived:NAME:trainN'; a sibling
  `test` folder for a folder named `train`; otherwise None when the data is a
  few-shot set (FID-VGG is then against the few-shot images) and the training
  folder itself for a large set. 'auto' few_shot: the training data when it is
  a derived trainN target with N <= FEW_SHOT_MAX or holds at most FEW_SHOT_MAX images, else None.
  '' (or None) turns either off.
  """
  def is_few_shot(src):
    if isinstance(src, str) and targets.is_derived(src):
      shots = targets.train_shots(src.rsplit(':', 1)[-1])
      return shots is not None and shots <= FEW_SHOT_MAX
    if isinstance(src, (str, os.PathLike)) and os.path.isdir(src):
      try:
        return len(list_image_files(pathlib.Path(src))) <= FEW_SHOT_MAX
      except DataError:
        return False
    if hasattr(src, 'shape'):  # an array, or a training ImageSet
      return len(src) <= FEW_SHOT_MAX
    return False

  off = lambda x: x is None or (isinstance(x, str) and not x)  # noqa: E731
  has_data = not off(data_source)
  auto = lambda x: isinstance(x, str) and x == 'auto'  # noqa: E731
  if auto(few_shot):
    few_shot = data_source if has_data and is_few_shot(data_source) else None
  if auto(reference):
    reference = None
    if isinstance(data_source, str) and targets.is_derived(data_source):
      prefix, subset = data_source.rsplit(':', 1)
      if targets.train_shots(subset) is not None:
        reference = prefix + ':test'
    elif isinstance(data_source, str) and data_source:
      folder = os.path.normpath(data_source)
      test = os.path.join(os.path.dirname(folder), 'test')
      if os.path.basename(folder) == 'train' and os.path.isdir(test):
        reference = test
      elif not is_few_shot(data_source):
        reference = data_source
  return (None if off(reference) else reference), (None if off(few_shot) else few_shot)
