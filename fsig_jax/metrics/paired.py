"""Scores of a translation against ground-truth pairs (the students' benchmarks).

For outputs y_hat_i = student(x_i) and true targets y_i over a test set:

  LPIPS-Alex, LPIPS-VGG  mean LPIPS v0.1 (metrics/lpips.py) of (y_hat_i, y_i),
                         the paired distance GPD's Tables 4-6 report (lower better)
  SSIM                   mean SSIM (metrics/ssim.py) of (y_hat_i, y_i) (higher better)
  FID-VGG, KID-VGG       of the set of outputs against the set of true targets,
                         on the offline VGG16 features (metrics/features.py; only
                         comparable within fsig-jax, see evaluate.VGG_NOTE)

AlexNet LPIPS needs images of at least 32 px and VGG16 LPIPS 16 px; below
that the LPIPS terms are left out with a note.
"""
from typing import Dict, Sequence

import numpy as np

from fsig_jax.metrics import evaluate, features, fid, lpips, ssim

PAIRED_METRICS = ('lpips_alex', 'lpips_vgg', 'ssim', 'fid_vgg', 'kid_vgg')
_LPIPS_MIN = {'alex': 32, 'vgg': 16}


def score_pairs(outputs: np.ndarray, targets: np.ndarray,
                metrics: Sequence[str] = PAIRED_METRICS, batch_size: int = 64,
                seed: int = 0) -> Dict[str, float]:
  """{metric label: value} of outputs against their true targets (NHWC, [-1, 1])."""
  outputs, targets = np.asarray(outputs, np.float32), np.asarray(targets, np.float32)
  if outputs.shape != targets.shape or outputs.ndim != 4:
    raise ValueError(f'outputs and targets must be matching NHWC batches, got {outputs.shape} '
                     f'and {targets.shape}')
  unknown = sorted(set(metrics) - set(PAIRED_METRICS))
  if unknown:
    raise ValueError(f'unknown paired metric(s) {unknown}; choose from {PAIRED_METRICS}')
  out = {'count': float(len(outputs))}
  side = min(outputs.shape[1:3])
  chunks = range(0, len(outputs), batch_size)
  for net in ('alex', 'vgg'):
    if f'lpips_{net}' in metrics and side >= _LPIPS_MIN[net]:
      out[f'LPIPS-{net.capitalize()}'] = float(np.mean(np.concatenate([
          np.asarray(lpips.lpips_distance(outputs[i:i + batch_size], targets[i:i + batch_size],
                                          net)) for i in chunks])))
  if 'ssim' in metrics:
    out['SSIM'] = float(np.mean(np.concatenate([
        np.asarray(ssim.ssim(outputs[i:i + batch_size], targets[i:i + batch_size]))
        for i in chunks])))
  if 'fid_vgg' in metrics or 'kid_vgg' in metrics:
    ext = features.vgg16_features()
    f_out = features.extract_features(ext, outputs, batch_size)
    f_ref = features.extract_features(ext, targets, batch_size)
    ref_stats = fid.FeatureStats.from_features(f_ref, ext.name)
    scores = evaluate.fid_kid(ext, f_out, ref_stats if 'fid_vgg' in metrics else None,
                              f_ref if 'kid_vgg' in metrics else None, seed)
    out.update(scores)
  return out


def summary(scores: Dict[str, float]) -> str:
  keys = [k for k in ('LPIPS-Alex', 'LPIPS-Vgg', 'SSIM', 'FID-VGG', 'KID-VGG') if k in scores]
  return ' | '.join(f'{k} {scores[k]:.4g}' for k in keys) + f' ({int(scores["count"])} pairs)'
