"""Shared pieces of the experiment configs: paths, targets and method presets."""
import os

from fsig_jax.data import targets
from fsig_jax.engine.run_config import default_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = targets.default_shared()  # ../shared beside the repo, or $FSIG_SHARED
TEN_SHOT = os.path.join(SHARED, 'data', 'ten_shot')
TARGETS = ('babies', 'sketches', 'caricatures', 'raphael', 'vangogh_face', 'vangogh_vil',
           'haunted_house')
# Derived targets with a real test set (fsig_jax/data/targets.py).
DERIVED = {'anime_sketch': 'derived:anime_sketch:train10'}
DERIVED_TEST = {'anime_sketch': 'derived:anime_sketch:test'}

# The offline source model: the anime-face StyleGAN2 the project trained and ships
# (models/anime64/MODEL_CARD.md).
ANIME64 = os.path.join(ROOT, 'models', 'anime64')

# Aliases on top of the method registry; anything else is a '+'-joined list of
# registry names, composed in order (e.g. 'ewc+cdc').
ALIASES = {
    # TGAN + DiffAugment with its default policy (Zhao et al. 2020): the "TGAN+ADA" row.
    'tgan_aug': dict(names='tgan', augment='color,translation,cutout'),
}


def base(method: str):
  """A default config with `method` set."""
  c = default_config()
  preset = ALIASES.get(method)
  if preset is not None:
    c.method.names = preset['names']
    c.hparams.augment = preset.get('augment', '')
  else:
    c.method.names = method.replace('+', ',')
  return c


def split_arg(arg: str, fields: str):
  """'cdc,babies' -> ['cdc', 'babies'] for fields 'METHOD,TARGET', else a clear error."""
  parts = arg.split(',')
  if len(parts) != len(fields.split(',')):
    raise ValueError(f'config argument must be {fields}, got {arg!r}')
  return parts


def rick_paper_setup(c, fisher_quantile: float, prune_quantile: float):
  """RICK's README settings on top of a paper config whose method includes rick.

  yunqing-me/RICK README: batch 2, num_fisher_img 5, fisher_freq 50,
  warmup_iter 250; the quantiles are per data set.
  """
  if 'rick' not in str(c.method.names).split(','):
    raise ValueError(f'this config sets up RICK; its method must include rick (e.g. rick or '
                     f'ewc+rick), got {c.method.names!r}')
  c.hparams.batch_size = 2
  c.method.kwargs.rick = dict(fisher_quantile=fisher_quantile, prune_quantile=prune_quantile,
                              warmup_iter=250, fisher_freq=50, num_fisher_img=5)
  return c


def offline_eval(c, target: str):
  """Periodic evaluation of an offline run (fsig_jax.metrics.evaluate), every 500 steps.

  A derived target has a real test set: FID-VGG / KID-VGG against its 2,000
  held-out images plus intra-LPIPS around the 10 shots. A real ten-shot set has
  none: intra-LPIPS, and FID-VGG against the 10 training images (the metrics
  JSON says so in 'reference_kind'). 1000 samples as CDC's intra-LPIPS.
  """
  c.eval_every = 500
  c.eval.num_samples = 1000
  c.eval.reference = DERIVED_TEST.get(target, '')
  c.eval.few_shot = 'auto'  # the training images
  return c
