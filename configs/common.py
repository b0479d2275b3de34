"""Shared pieces of the experiment configs: paths and per-method settings."""
import os

from fsig_jax.engine.run_config import default_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('FSIG_SHARED', os.path.join(os.path.dirname(ROOT), 'shared'))
TEN_SHOT = os.path.join(SHARED, 'data', 'ten_shot')
TARGETS = ('babies', 'sketches', 'caricatures', 'raphael', 'vangogh_face', 'vangogh_vil',
           'haunted_house')

# The offline source model: the shipped anime-face StyleGAN2 once it exists,
# until then a small randomly initialised one.
ANIME64 = os.path.join(ROOT, 'models', 'anime64')
OFFLINE_SOURCE = ANIME64 if os.path.isdir(ANIME64) else 'random:64'

METHODS = ('tgan', 'tgan_aug', 'freezed')


def base(method: str):
  """A default config with `method` set (tgan_aug = TGAN + DiffAugment)."""
  c = default_config()
  if method not in METHODS:
    raise ValueError(f'unknown method {method!r}; configs exist for {METHODS}')
  if method == 'tgan_aug':
    c.method.names = 'tgan'
    c.hparams.augment = 'color,translation,cutout'  # DiffAugment's default policy
  else:
    c.method.names = method
  return c
