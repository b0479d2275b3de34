"""The programmatic entry points of fsig-jax: load, save, adapt."""
from typing import Optional, Sequence, Tuple, Union

import jax

from fsig_jax.convert.errors import CheckpointError, UnsafePickleError
from fsig_jax.convert.load import load_bundle, load_pretrained, save_bundle
from fsig_jax.models.bundle import MissingNetworkError, ModelBundle
from fsig_jax.models.config import StyleGAN2Config, ada_channels, rosinality_channels

__all__ = [
    'adapt', 'CheckpointError', 'MissingNetworkError', 'ModelBundle', 'StyleGAN2Config',
    'UnsafePickleError', 'ada_channels', 'load_bundle', 'load_pretrained',
    'rosinality_channels', 'save_bundle',
]


def adapt(model: Union[ModelBundle, str], images, method: Union[str, Sequence[str]] = 'tgan',
          steps: int = 1000, key: Optional[jax.Array] = None, seed: int = 0,
          workdir: Optional[str] = None, method_kwargs: Optional[dict] = None,
          **overrides) -> Tuple[ModelBundle, dict]:
  """Adapts `model` to `images` and returns (adapted ModelBundle, final train state).

  Args:
    model: a ModelBundle or a checkpoint path (.pt, .pkl, orbax directory); it
      needs a discriminator.
    images: an NHWC/NCHW array (uint8, or floats in [-1, 1]), a folder path, or
      'tfds:NAME[:SPLIT]'.
    method: a method name or several to compose, e.g. ('ewc', 'cdc').
    steps: number of adaptation steps.
    key: a PRNG key; if given it replaces `seed` (the run is a function of it).
    seed: integer seed used when no key is given.
    workdir: if given, checkpoints, logs, grids and the model are written
      there (and the run resumes from it); by default nothing is written.
    method_kwargs: {method name: {arg: value}}, e.g. {'freezed': {'freeze_layers': 4}}.
    **overrides: any hyper-parameter (lr, batch_size, r1_gamma, augment, ...) or
      top-level run setting (log_every, checkpoint_every, sample_every, ...).
  """
  from fsig_jax.engine import loop, run_config  # pylint: disable=g-import-not-at-top
  config = run_config.default_config()
  config.method.names = method if isinstance(method, str) else ','.join(method)
  config.steps = steps
  if key is not None:
    seed = int(jax.random.randint(key, (), 0, 2 ** 31 - 1))
  config.seed = seed
  for name, kwargs in (method_kwargs or {}).items():
    config.method.kwargs[name] = dict(kwargs)
  for k, v in overrides.items():
    if k in config.hparams:
      config.hparams[k] = v
    elif k in config and k not in ('model', 'data', 'method', 'hparams'):
      config[k] = v
    else:
      valid = sorted(list(config.hparams.keys()) +
                     [k for k in config.keys() if k not in ('model', 'data', 'method', 'hparams')])
      raise TypeError(f'adapt() got an unknown setting {k!r}; valid settings: {valid}')
  bundle = model if isinstance(model, ModelBundle) else load_pretrained(
      model, require_discriminator=True)
  state, adapted = loop.train(config, workdir, bundle=bundle, images=images)
  return adapted, state
