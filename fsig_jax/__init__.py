"""fsig-jax: few-shot image generation in JAX/Flax.

Start with `fsig_jax.load_pretrained(path)`, which reads rosinality `.pt`,
NVIDIA stylegan2-ada `.pkl` and fsig-jax orbax checkpoints into a ModelBundle.
Top-level names are imported lazily so `import fsig_jax.nn` stays light.
Importing fsig_jax sets its XLA:CPU compiler option (YNNPACK fusions off;
`fsig_jax/utils/xla_cpu.py` says why and how to keep XLA's default).
"""
import importlib

from fsig_jax.utils import xla_cpu as _xla_cpu

_xla_cpu.apply_defaults()  # before JAX starts its backends: fsig_jax/utils/xla_cpu.py

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
