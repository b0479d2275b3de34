"""The adaptation trainer: data, state, the jitted step, on the shared run machinery.

`train(config, workdir)` resumes automatically from the newest complete
checkpoint in `workdir` and continues bit-identically (batches and keys are
functions of the step). Checkpoints, logs, progress, the finite-loss stop,
grids and the export come from `fsig_jax.run.Run` (see there). Every
`config.eval_every` steps and at the last step the lead process evaluates the model
(`periodic_eval`, settings in `config.eval`). A method's preliminary training
phases (AdAM's probing) run through `engine.phases` as sub-runs of the same
workdir. With `workdir=None` nothing is written (the `adapt()` API).
"""
import logging
import os
from typing import Optional, Tuple

import jax
import numpy as np

from fsig_jax.convert.load import load_pretrained
from fsig_jax.data import targets
from fsig_jax.data.image_set import load_image_set
from fsig_jax.engine import hparams, parallel, periodic_eval, phases, run_config
from fsig_jax.engine.batches import Batches
from fsig_jax.engine.state import init_state, make_optimizers, state_to_bundle
from fsig_jax.engine.step import make_train_step
from fsig_jax.errors import ConfigError, NonFiniteLossError  # noqa: F401 (re-exported)
from fsig_jax.methods import get_method
from fsig_jax.models import presets
from fsig_jax.models.bundle import ModelBundle, init_bundle
from fsig_jax.run import Run, host

log = logging.getLogger('fsig_jax')


def sample_rows(source_row: Optional[np.ndarray], adapted: ModelBundle, z):
  """(images, ncol) of a sample grid. Row 1: source G_ema (fixed, computed once),
  row 2: adapted G_ema, same latents and constant noise. Without a source row
  (training from scratch, where the source is the random initialisation) only
  G_ema's samples, 8 to a row."""
  imgs = np.asarray(adapted.generate(z))
  if source_row is None:
    return imgs, min(8, z.shape[0])
  return np.concatenate([source_row, imgs]), z.shape[0]


def prepare(config, bundle: Optional[ModelBundle] = None, images=None):
  """Loads (or checks) the model and the target images named by the config; the images
  are an `ImageSet` (uint8 in memory, or read from disk per batch for a folder of
  more than config.data.stream_above images)."""
  if bundle is None:
    if not config.model.checkpoint:
      raise ConfigError('config.model.checkpoint is empty: set it to a rosinality .pt, an '
                        'ada-pytorch .pkl or an fsig-jax checkpoint directory')
    spec = config.model.checkpoint
    if not spec.startswith('random:') and not os.path.exists(spec):
      what = config.model.description or 'a StyleGAN2 checkpoint'
      raise ConfigError(
          f'config.model.checkpoint {spec!r} does not exist. This config needs {what}. Pass '
          '--config.model.checkpoint=PATH: a rosinality .pt or an ada-pytorch .pkl is read '
          'directly (no PyTorch needed), or convert it once with `python launch/convert.py '
          '--input=FILE --output=DIR` and pass DIR.')
    if spec.startswith('random:'):
      bundle = init_bundle(presets.parse_random_spec(spec), jax.random.PRNGKey(config.seed),
                           source=spec)
    else:
      bundle = load_pretrained(spec, require_discriminator=True,
                               resolution=config.model.resolution or None)
  bundle.require('D')
  res = bundle.config.resolution
  if images is None:
    if not config.data.source:
      raise ConfigError('config.data.source is empty: set it to a folder of target images '
                        '(or tfds:NAME[:SPLIT])')
    images = config.data.source
    if (isinstance(images, str) and not images.startswith(('tfds:', targets.PREFIX))
        and not os.path.exists(images) and config.data.description):
      raise ConfigError(
          f'config.data.source {images!r} does not exist. This config needs '
          f'{config.data.description}. Pass --config.data.source=FOLDER.')
  if targets.is_derived(images):
    images = targets.load_derived(images, res)
  images = load_image_set(images, res, min_images=config.data.min_images,
                          max_images=config.data.max_images or None,
                          stream_above=config.data.get('stream_above', 0))
  return bundle, images


def train(config, workdir: Optional[str] = None, *, bundle: Optional[ModelBundle] = None,
          images=None, mesh=None) -> Tuple[dict, ModelBundle]:
  """Runs (or resumes) adaptation; returns the final state and adapted bundle."""
  bundle, images = prepare(config, bundle, images)
  hp = config.hparams
  for warning in hparams.warnings(hp):
    log.warning(warning)
  names, method_kwargs = run_config.method_names(config), run_config.method_kwargs(config)
  try:
    method = get_method(names, **method_kwargs)
  except (ValueError, TypeError) as e:
    raise ConfigError(f'config.method: {e}') from None
  mesh = mesh or parallel.config_mesh(config)
  parallel.check_batch(hp.batch_size, mesh)
  # Checked now (a bad reference fails before training); evaluated on the lead process.
  evaluator = periodic_eval.from_config(config, workdir, images, bundle.config.resolution)
  run = Run(config, workdir, defaults=run_config.default_config(), architecture=bundle.config)
  evaluator = evaluator if run.lead else None

  optimizers = make_optimizers(hp, bundle.config, method.late_start)
  state = init_state(bundle, hp, method, jax.random.PRNGKey(config.seed), images=images,
                     optimizers=optimizers, run_phase=phases.runner(run, mesh))
  state = run.restore(parallel.replicate(state, mesh))
  step_fn = make_train_step(bundle.config, hp, method, mesh=mesh, optimizers=optimizers,
                            cache_as={'names': names, 'kwargs': method_kwargs})
  batches = Batches(images, hp.batch_size, seed=config.seed, flip=config.data.flip,
                    method=method, resolution=bundle.config.resolution, mesh=mesh,
                    stream_above=config.data.get('stream_above', 0))
  z_fixed = jax.random.normal(jax.random.PRNGKey(config.seed + 1),
                              (config.num_samples, bundle.config.z_dim))
  source_row = None  # the source model's images of z_fixed never change
  from_scratch = bundle.source.startswith('random:')  # pretraining: no source row
  start = run.start(state)
  log.info('%s: %d target images at %dpx, method %s, steps %d..%d, %d device(s)',
           bundle.source, len(images), bundle.config.resolution, method.name, start,
           config.steps, mesh.devices.size)

  if evaluator is not None and evaluator.interrupted(start):  # killed during it: make it now
    run.scalars(start, evaluator(start, state_to_bundle(host(state), bundle)))
  step = start
  while step < config.steps:
    state, metrics = step_fn(state, *batches(step))
    step += 1
    run.step_done(step, metrics, state)
    if run.sample_due(step):
      if source_row is None and not from_scratch:
        source_row = np.asarray(bundle.generate(z_fixed))
      imgs, ncol = sample_rows(source_row, state_to_bundle(host(state), bundle), z_fixed)
      run.grid(step, imgs, ncol,
               'G_ema samples' if from_scratch else 'top: source, bottom: adapted')
    if evaluator is not None and evaluator.due(step, evaluator.last):
      run.scalars(step, evaluator(step, state_to_bundle(host(state), bundle)))

  adapted = state_to_bundle(host(state), bundle,
                            source=f'adapted({method.name}) from {bundle.source}')
  if workdir is not None and run.lead:
    for path in method.report(host(state['method']), workdir):
      log.info('wrote %s', path)
  run.export(adapted, {'steps': step, 'method': method.name, 'source': bundle.source})
  return state, adapted
