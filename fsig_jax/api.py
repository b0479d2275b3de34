"""The programmatic entry points of fsig-jax: load, save, adapt, train; the error family."""
import importlib
from typing import Optional, Sequence, Tuple, Union

import jax

from fsig_jax.convert.load import load_bundle, load_pretrained, save_bundle
from fsig_jax.errors import (CheckpointError, ConfigError, DataError, FsigError,
                             MissingNetworkError, NonFiniteLossError, UnsafePickleError,
                             WriteError)
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.config import StyleGAN2Config, ada_channels, rosinality_channels

__all__ = [
    'adapt', 'CheckpointError', 'ConfigError', 'DataError', 'FsigError', 'MissingNetworkError',
    'ModelBundle', 'NonFiniteLossError', 'StyleGAN2Config', 'TRAINERS', 'UnsafePickleError',
    'ada_channels', 'load_bundle', 'load_pretrained', 'load_student', 'rosinality_channels',
    'save_bundle', 'train', 'WriteError',
]

# config.trainer -> the function that runs it, 'module:function' (imported on use, so
# `import fsig_jax` stays light). Each is called as fn(config, workdir, **kw); the
# distillation students join this table (DESIGN.md, "Trainers").
TRAINERS = {
    'adapt': 'fsig_jax.engine.loop:train',  # few-shot adaptation with fsig_jax/methods
    'progressive': 'fsig_jax.engine.progressive:pretrain',  # ProGAN's progressive growing
    'gpd': 'fsig_jax.distill.gpd:train',  # GAN Prior Distillation translation student
    'kdit': 'fsig_jax.distill.kdit:train',  # KDIT stage 1: style-mixed triplet distillation
    'stargan_v2': 'fsig_jax.distill.stargan:train',  # StarGAN v2 (KDIT stage 2 / scratch)
    'kdit_spade': 'fsig_jax.distill.kdit_spade:train',  # KDIT part 2: SPADE X-to-image
}


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
  from fsig_jax.engine import run_config  # pylint: disable=g-import-not-at-top
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
  state, adapted = train(config, workdir, bundle=bundle, images=images)  # trainer 'adapt'
  return adapted, state


def __getattr__(name):
  # The student callables, imported on first use (`import fsig_jax` stays light).
  if name in ('Student', 'StarGANStudent', 'ConditionalStudent'):
    from fsig_jax.models.students import student  # pylint: disable=g-import-not-at-top
    return getattr(student, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def load_student(path: str, batch_size: int = 32):
  """A trained translation student in one line: `student = load_student('runs/gpd/model')`,
  then `sketches = student(photos)` (NHWC uint8 or [-1, 1] floats -> [-1, 1] floats);
  a KDIT / StarGAN v2 student also takes the target domain and a reference or a
  seed: `student(photos, 1, reference=sketch)` or `student(photos, 1, seed=0)`; a
  KDIT SPADE student takes conditions and a seed: `student(sketches, seed=0)`.

  `path` is the student's exported model directory or its training workdir.
  """
  from fsig_jax.convert.load import load_model_dir  # pylint: disable=g-import-not-at-top
  from fsig_jax.models.students.student import Student  # pylint: disable=g-import-not-at-top
  bundle = load_model_dir(path, setting='student', what='a student workdir (launch/main.py '
                          '--workdir) or its model/ directory')
  arch = getattr(bundle.config, 'arch', '')
  if arch in ('stargan_v2', 'spade_student'):
    from fsig_jax.models.students import student  # pylint: disable=g-import-not-at-top
    cls = student.StarGANStudent if arch == 'stargan_v2' else student.ConditionalStudent
    return cls(bundle, batch_size=batch_size)
  if 'student' not in bundle.nets:
    raise CheckpointError(f'{path} holds a {type(bundle.config).__name__} model, not a '
                          'translation student; load generators with load_pretrained()')
  return Student(bundle, batch_size=batch_size)


def trainer(name: str):
  """The function TRAINERS names for `name` (a config's `trainer` field), imported now."""
  if name not in TRAINERS:
    raise ConfigError(f'config.trainer {name!r} names no trainer; set it to one of '
                      f'{sorted(TRAINERS)} (fsig_jax.api.TRAINERS)')
  module, function = TRAINERS[name].split(':')
  return getattr(importlib.import_module(module), function)


def train(config, workdir: Optional[str] = None, **kw):
  """Runs the trainer `config.trainer` selects (TRAINERS) on `config`, writing to `workdir`.

  `launch/main.py` is this function on a config file; `kw` go to the trainer
  (e.g. bundle= and images= for 'adapt', as in `adapt()`). The config's numbers
  (`run.check_config`) and the workdir (`run.check_workdir`) are checked first.
  Returns what the
  trainer returns ('adapt': (final train state, adapted ModelBundle)).
  """
  from fsig_jax import run  # pylint: disable=g-import-not-at-top
  fn = trainer(config.trainer)
  run.check_config(config)  # bad numbers and an unwritable workdir before any data is loaded
  run.check_workdir(workdir)
  return fn(config, workdir, **kw)
