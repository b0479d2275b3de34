"""The result of `evaluate.evaluate()` shown three ways: one line, strict JSON, scalars.

Shared by the launchers, periodic evaluation during training and the benchmark
table, so every tool prints and stores a result the same way.
"""
from typing import Any, Dict

import numpy as np

# The result key of CDC's intra-cluster LPIPS (its std is under INTRA_LPIPS + '_std').
INTRA_LPIPS = 'intra-LPIPS'


def scalars(result: Dict[str, Any]) -> Dict[str, float]:
  """The metric numbers of an `evaluate` result ({'FID-VGG': ..., ...})."""
  return {k: float(result[k]) for k in result['metrics']}


def json_ready(result: Dict[str, Any]) -> Dict[str, Any]:
  """`result` with NaN / inf floats as None (strict JSON), e.g. the std of one cluster."""
  return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
          for k, v in result.items()}


def summary(result: Dict[str, Any]) -> str:
  """One line: 'FID-VGG 12.3 (vs held-out set derived:..., 2000) | KID-VGG ... | ...'."""
  parts = []
  for k in result['metrics']:
    if k.endswith('_std'):
      continue
    v = result[k]
    if k == INTRA_LPIPS:
      parts.append(f'{k} {v:.4f} ± {result[f"{k}_std"]:.4f} (around {result["few_shot_count"]} '
                   'few-shot images)')
    else:
      parts.append(f'{k} {v:.4g}')
  if 'reference' in result:
    parts.append(f'reference: {result["reference_kind"]} {result["reference"]} '
                 f'({result["reference_count"]} images)')
  return f'{result["num_samples"]} samples | ' + ' | '.join(parts)
