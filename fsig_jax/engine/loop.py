"""The training loop: data, state, the jitted step, checkpoints, logs, grids.

`train(config, workdir)` resumes automatically from the newest complete
checkpoint in `workdir` and continues bit-identically (batches and keys are
functions of the step). Checkpoints are orbax's atomic directories, so a run
killed at any moment, also mid-write, restarts from the last complete one. A
non-finite loss stops the run with the step and term named, before anything
is saved. Every `config.eval_every` steps the lead process evaluates the model
(`periodic_eval`, settings in `config.eval`). With `workdir=None` nothing is
written (the `adapt()` API).
"""
import collections
import json
import logging
import os
import time
from typing import Optional, Tuple

import jax
import numpy as np

from fsig_jax.convert.load import load_pretrained, save_bundle
from fsig_jax.data import targets
from fsig_jax.data.images import load_images
from fsig_jax.data.sources import BatchSampler
from fsig_jax.engine import export, parallel, periodic_eval, run_config
from fsig_jax.engine.state import init_state, state_to_bundle
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import get_method
from fsig_jax.models import presets
from fsig_jax.models.bundle import ModelBundle, init_bundle
from fsig_jax.utils.images import save_grid

log = logging.getLogger('fsig_jax')


class NonFiniteLossError(FloatingPointError):
  """A loss term became NaN or inf; the message names the step and the term."""


def _host(tree):
  """Replicated (possibly multi-process) arrays -> numpy on this host."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      x = x.addressable_data(0)
    return np.asarray(x)
  return jax.tree.map(get, tree)


def _fmt_time(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


class Progress:
  """Step rate and ETA over the last `window` progress lines of this process
  (compile excluded), so the ETA follows the current speed: a ProGAN growing to
  a larger resolution, or a machine that got busier or freer."""

  def __init__(self, total: int, window: int = 20):
    self.total = total
    self.marks = collections.deque(maxlen=window + 1)  # (time, step), oldest first

  def line(self, step: int, metrics: dict, now: Optional[float] = None) -> str:
    now = time.time() if now is None else now
    terms = ' '.join(f'{k}={v:.4g}' for k, v in sorted(metrics.items()))
    self.marks.append((now, step))
    if len(self.marks) == 1:  # the first step includes compilation
      return f'step {step}/{self.total} | first step (includes compilation) | {terms}'
    (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
    rate = (s1 - s0) / max(t1 - t0, 1e-9)
    eta = _fmt_time((self.total - step) / rate) if rate > 0 else '?'
    return f'step {step}/{self.total} | {rate:.2f} it/s | ETA {eta} | {terms}'


def check_finite(metrics: dict, step: int):
  bad = [k for k, v in metrics.items() if not np.isfinite(v)]
  if bad:
    raise NonFiniteLossError(
        f'step {step}: loss term(s) {bad} became non-finite ({ {k: metrics[k] for k in bad} }); '
        'the run stopped without saving this step, the last good checkpoint is kept. Lower '
        'hparams.lr or check the data and method weights.')


def _checkpoint_manager(workdir: str, config):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  options = ocp.CheckpointManagerOptions(
      max_to_keep=config.keep_checkpoints, create=True, cleanup_tmp_directories=True,
      enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'),
                               options=options)


def _save(mngr, step: int, state):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  mngr.save(step, args=ocp.args.StandardSave(state), force=True)
  mngr.wait_until_finished()


def _restore(mngr, state):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  step = mngr.latest_step()
  if step is None:
    return state
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          state)
  log.info('resuming from checkpoint at step %d', step)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def _writer(workdir: Optional[str]):
  if workdir is None:
    return None
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  return metric_writers.create_default_writer(
      os.path.join(workdir, 'logs'), just_logging=jax.process_index() > 0, asynchronous=False)


def _sample_grid(path: str, source_row: Optional[np.ndarray], adapted: ModelBundle, z) -> str:
  """Row 1: source G_ema (fixed, computed once), row 2: adapted G_ema, same latents
  and constant noise. Without a source row (training from scratch, where the
  source is the random initialisation) only G_ema's samples, 8 to a row."""
  imgs = np.asarray(adapted.generate(z))
  if source_row is None:
    return save_grid(path, imgs, ncol=min(8, z.shape[0]))
  return save_grid(path, np.concatenate([source_row, imgs]), ncol=z.shape[0])


def log_and_checkpoint(config, step: int, start: int, metrics: dict, progress: Progress,
                       writer, mngr, state):
  """After step `step`: logs at log_every (and the first and last step), saves a
  checkpoint at checkpoint_every and at the end."""
  if step % config.log_every == 0 or step == config.steps or step == start + 1:
    log.info(progress.line(step, metrics))
    if writer is not None:
      writer.write_scalars(step, metrics)
  if mngr is not None and (step % config.checkpoint_every == 0 or step == config.steps):
    _save(mngr, step, state)


def export_run(workdir: Optional[str], writer, model: ModelBundle, step: int, method: str,
               source: str):
  """End of a run: flushes the logs; the lead process writes model/ and then
  run.json, whose presence marks the export complete."""
  if workdir is None:
    return
  if writer is not None:
    writer.flush()
  if jax.process_index() == 0:
    save_bundle(model, os.path.join(workdir, 'model'), overwrite=True)
    with open(os.path.join(workdir, 'run.json'), 'w') as f:
      json.dump({'steps': step, 'method': method, 'source': source}, f, indent=2)


def open_workdir(config, workdir: Optional[str], state, model_config):
  """(checkpoint manager, state): writes or checks workdir/config.json (a resume
  must not change the run), records the architecture, restores the newest
  checkpoint into `state`. (None, state) without a workdir."""
  if workdir is None:
    return None, state
  lead = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  cfg_path = os.path.join(workdir, 'config.json')
  if os.path.exists(cfg_path):
    with open(cfg_path) as f:
      run_config.check_resumable(f.read(), config, workdir)
  elif lead:
    with open(cfg_path, 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
  if lead:
    export.write_architecture(workdir, model_config)
  mngr = _checkpoint_manager(workdir, config)
  return mngr, _restore(mngr, state)


def prepare(config, bundle: Optional[ModelBundle] = None, images=None):
  """Loads (or checks) the model and target images named by the config."""
  if bundle is None:
    if not config.model.checkpoint:
      raise run_config.ConfigError('config.model.checkpoint is empty: set it to a rosinality '
                                   '.pt, an ada-pytorch .pkl or an fsig-jax checkpoint directory')
    spec = config.model.checkpoint
    if not spec.startswith('random:') and not os.path.exists(spec):
      what = config.model.description or 'a StyleGAN2 checkpoint'
      raise run_config.ConfigError(
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
      raise run_config.ConfigError('config.data.source is empty: set it to a folder of target '
                                   'images (or tfds:NAME[:SPLIT])')
    images = config.data.source
    if (isinstance(images, str) and not images.startswith(('tfds:', targets.PREFIX))
        and not os.path.exists(images) and config.data.description):
      raise run_config.ConfigError(
          f'config.data.source {images!r} does not exist. This config needs '
          f'{config.data.description}. Pass --config.data.source=FOLDER.')
  if targets.is_derived(images):
    images = targets.load_derived(images, res)
  images = load_images(images, res, min_images=config.data.min_images,
                       max_images=config.data.max_images or None)
  return bundle, images


def train(config, workdir: Optional[str] = None, *, bundle: Optional[ModelBundle] = None,
          images=None, mesh=None) -> Tuple[dict, ModelBundle]:
  """Runs (or resumes) adaptation; returns the final state and adapted bundle."""
  bundle, images = prepare(config, bundle, images)
  hp = config.hparams
  try:
    method = get_method(run_config.method_names(config), **run_config.method_kwargs(config))
  except (ValueError, TypeError) as e:
    raise run_config.ConfigError(f'config.method: {e}') from None
  mesh = mesh or parallel.make_mesh()
  parallel.check_batch(hp.batch_size, mesh)
  lead = jax.process_index() == 0
  # Checked now (a bad reference fails before training); evaluated on the lead process.
  evaluator = periodic_eval.from_config(config, workdir, images, bundle.config.resolution)
  evaluator = evaluator if lead else None

  key = jax.random.PRNGKey(config.seed)
  state = init_state(bundle, hp, method, key, images=images)
  state = parallel.replicate(state, mesh)
  mngr, state = open_workdir(config, workdir, state, bundle.config)

  step_fn = make_train_step(bundle.config, hp, method, mesh=mesh)
  sampler = BatchSampler(images, hp.batch_size, seed=config.seed, flip=config.data.flip)
  writer = _writer(workdir)
  z_fixed = jax.random.normal(jax.random.PRNGKey(config.seed + 1),
                              (config.num_samples, bundle.config.z_dim))
  source_row = None  # the source model's images of z_fixed never change
  from_scratch = bundle.source.startswith('random:')  # pretraining: no source row
  start = int(_host(state['step']))
  progress = Progress(config.steps)
  log.info('%s: %d target images at %dpx, method %s, steps %d..%d, %d device(s)',
           bundle.source, len(images), bundle.config.resolution, method.name, start,
           config.steps, mesh.devices.size)

  step = start
  while step < config.steps:
    local = sampler.local_batch(step, jax.process_index(), jax.process_count())
    new_state, metrics = step_fn(state, parallel.global_batch(local, mesh))
    metrics = {k: float(v) for k, v in _host(metrics).items()}
    check_finite(metrics, step)
    state, step = new_state, step + 1
    log_and_checkpoint(config, step, start, metrics, progress, writer, mngr, state)
    if workdir is not None and lead and config.sample_every and (
        step % config.sample_every == 0 or step == config.steps):
      if source_row is None and not from_scratch:
        source_row = np.asarray(bundle.generate(z_fixed))
      adapted = state_to_bundle(_host(state), bundle)
      path = _sample_grid(os.path.join(workdir, 'samples', f'step_{step:06d}.png'),
                          source_row, adapted, z_fixed)
      log.info('wrote %s (%s)', path,
               'G_ema samples' if from_scratch else 'top: source, bottom: adapted')
    if evaluator is not None and evaluator.due(step):
      scalars = evaluator(step, state_to_bundle(_host(state), bundle))
      if writer is not None:
        writer.write_scalars(step, scalars)

  adapted = state_to_bundle(_host(state), bundle,
                            source=f'adapted({method.name}) from {bundle.source}')
  if workdir is not None and lead:
    for path in method.report(_host(state['method']), workdir):
      log.info('wrote %s', path)
  export_run(workdir, writer, adapted, step, method.name, bundle.source)
  return state, adapted
