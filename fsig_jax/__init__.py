"""fsig-jax: few-shot image generation in JAX/Flax.

Start with `fsig_jax.load_pretrained(path)`, which reads rosinality `.pt`,
NVIDIA stylegan2-ada `.pkl` and fsig-jax orbax checkpoints into a ModelBundle.
Top-level names are imported lazily so `import fsig_jax.nn` stays light.
"""
import importlib

__version__ = '0.1.0'

_API = ('adapt', 'CheckpointError', 'ConfigError', 'DataError', 'FsigError',
        'MissingNetworkError', 'ModelBundle', 'NonFiniteLossError', 'StyleGAN2Config', 'TRAINERS',
        'UnsafePickleError', 'ada_channels', 'load_bundle', 'load_pretrained',
        'rosinality_channels', 'save_bundle', 'train', 'WriteError')
__all__ = list(_API)


def __getattr__(name):
  if name in _API:
    return getattr(importlib.import_module('fsig_jax.api'), name)
  raise AttributeError(f'module fsig_jax has no attribute {name!r}')
