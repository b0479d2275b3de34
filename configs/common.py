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

# The offline source model: the shipped anime-face StyleGAN2 once it exists,
# until then a small randomly initialised one.
ANIME64 = os.path.join(ROOT, 'models', 'anime64')
OFFLINE_SOURCE = ANIME64 if os.path.isdir(ANIME64) else 'random:64'

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
