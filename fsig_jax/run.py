"""One run machinery for every trainer: workdir, checkpoints, logs, grids, export.

A trainer (adaptation `engine.loop`, ProGAN pretraining `engine.progressive`,
the distillation students) owns its state pytree, its jitted step and its
config defaults; everything around the step comes from a `Run`:

  run = Run(config, workdir, defaults=default_config(), architecture=cfg)
  state = run.restore(init_state(...))        # newest checkpoint, else as given
  for step in range(run.start(state), config.steps):
    state, metrics = step_fn(state, batch(step))
    run.step_done(step + 1, metrics, state)    # finite check, progress, checkpoint
    run.grid(step + 1, images)                 # at sample_every (PNG + TensorBoard)
  run.export(model, {'trainer': ...})           # model/ then run.json

What a Run gives every trainer:
  * the workdir's config record: workdir/config.json is written by the first
    run and checked on every resume; a resume may change only
    `RESUMABLE_CHANGES` (run length, logging, evaluation); a setting added to
    fsig-jax after the run started counts as no change at its default;
  * the architecture record (model_config.json) the evaluation tools read;
  * orbax checkpoints: atomic (written under a temporary name, renamed when
    complete, so a run killed mid-write resumes from the last complete one),
    keep-N (`config.keep_checkpoints`), restore of the newest one;
  * clu metric writers (TensorBoard + log; scalars and sample grids), on the
    lead process only;
  * progress lines with step rate and ETA over the recent lines;
  * the finite-loss stop: a NaN or inf term raises `NonFiniteLossError`
    naming the step and term before anything of that step is saved, so the
    last good checkpoint stays the newest;
  * sample grids (workdir/samples/step_NNNNNN.png and TensorBoard);
  * export of the final model (model/ and run.json, whose presence marks the
    export complete);
  * phases: `run.phase(name, steps)` is a Run of its own under
    workdir/phases/NAME (checkpoints, progress, resume) for a training stage a
    method needs before the main run (AdAM's importance probing); its result
    is saved once (`save_result` / `load_result`) so a resumed run skips it.

Without a workdir (the `adapt()` API) nothing is written and nothing is
restored; progress is still logged.
"""
import collections
import dataclasses
import json
import logging
import os
import time
from typing import Any, Dict, Optional

import jax
import numpy as np
from flax import traverse_util

from fsig_jax.errors import ConfigError, NonFiniteLossError
from fsig_jax.utils.images import make_grid, save_grid

log = logging.getLogger('fsig_jax')

# Fields that may differ when resuming a workdir (they do not change the run).
RESUMABLE_CHANGES = ('steps', 'log_every', 'checkpoint_every', 'sample_every',
                     'keep_checkpoints', 'eval_every', 'num_samples', 'eval', 'max_devices')
ARCHITECTURE_FILE = 'model_config.json'


def run_fields(c, steps: int, *, log_every: int = 100, checkpoint_every: int = 1000,
               sample_every: int = 1000, num_samples: int = 8):
  """Adds the fields a Run reads (steps, seed, log/checkpoint/sample cadence,
  keep_checkpoints, num_samples) and the trainer's device count (max_devices) to
  its default ConfigDict `c`."""
  c.steps = steps
  c.seed = 0
  c.log_every = log_every
  c.checkpoint_every = checkpoint_every
  c.keep_checkpoints = 3
  c.sample_every = sample_every
  c.num_samples = num_samples
  c.max_devices = 0  # 0: every device; N: at most N (parallel.make_mesh)
  return c


def host(tree):
  """Replicated (possibly multi-process) arrays -> numpy on this host."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      x = x.addressable_data(0)
    return np.asarray(x)
  return jax.tree.map(get, tree)


def fmt_time(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


class Progress:
  """Step rate and ETA over the last `window` progress lines of this process
  (compile excluded), so the ETA follows the current speed: a ProGAN growing to
  a larger resolution, or a machine that got busier or freer."""

  def __init__(self, total: int, window: int = 20, name: str = ''):
    self.total = total
    self.prefix = f'{name}: ' if name else ''
    self.marks = collections.deque(maxlen=window + 1)  # (time, step), oldest first

  def line(self, step: int, metrics: dict, now: Optional[float] = None) -> str:
    now = time.time() if now is None else now
    terms = ' '.join(f'{k}={v:.4g}' for k, v in sorted(metrics.items()))
    self.marks.append((now, step))
    head = f'{self.prefix}step {step}/{self.total}'
    if len(self.marks) == 1:  # the first step includes compilation
      return f'{head} | first step (includes compilation) | {terms}'
    (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
    rate = (s1 - s0) / max(t1 - t0, 1e-9)
    eta = fmt_time((self.total - step) / rate) if rate > 0 else '?'
    return f'{head} | {rate:.2f} it/s | ETA {eta} | {terms}'


def check_finite(metrics: dict, step: int):
  """Raises NonFiniteLossError naming the step and the non-finite terms."""
  bad = [k for k, v in metrics.items() if not np.isfinite(v)]
  if bad:
    raise NonFiniteLossError(
        f'step {step}: loss term(s) {bad} became non-finite ({ {k: metrics[k] for k in bad} }); '
        'the run stopped without saving this step, the last good checkpoint is kept. Lower '
        'hparams.lr or check the data and method weights.')


def check_resumable(saved_json: str, config, workdir: str, defaults=None):
  """Raises ConfigError when `config` would change a run saved in `workdir`.

  A setting missing from the saved config (added to fsig-jax after the run
  started) is no change when it holds its value in `defaults` (the trainer's
  default config), so an upgraded fsig-jax resumes older runs.
  """
  saved = json.loads(saved_json)
  now = json.loads(config.to_json_best_effort())
  # Runs saved before `config.trainer` existed: launch/main.py chose the trainer
  # from the config's shape ('progressive' when it had config.progressive).
  if 'trainer' in now:
    saved.setdefault('trainer', 'progressive' if 'progressive' in saved else 'adapt')
  base = json.loads(defaults.to_json_best_effort()) if defaults is not None else {}
  diffs = []

  def walk(a, b, d, prefix=''):
    for k in sorted(set(a) | set(b)):
      key = f'{prefix}{k}'
      if key in RESUMABLE_CHANGES:
        continue
      va, vb = a.get(k), b.get(k)
      if k not in a and isinstance(d, dict) and k in d and d[k] == vb:
        continue  # a newer setting at its default
      if isinstance(va, dict) and isinstance(vb, dict):
        walk(va, vb, d.get(k) if isinstance(d, dict) else None, key + '.')
      elif va != vb:
        diffs.append(f'{key}: {va!r} -> {vb!r}')

  walk(saved, now, base)
  if diffs:
    raise ConfigError(
        f'{workdir} holds a run started with a different config ({"; ".join(diffs[:5])}). '
        f'Resume it with the same config (only {", ".join(RESUMABLE_CHANGES)} may change), '
        'or pass a new --workdir.')


def write_architecture(workdir: str, cfg) -> None:
  """Records the trained architecture (a dataclass config) beside config.json, once."""
  path = os.path.join(workdir, ARCHITECTURE_FILE)
  if not os.path.exists(path):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump({'arch': getattr(cfg, 'arch', 'stylegan2'), 'config': dataclasses.asdict(cfg)},
                f, indent=2)
    os.replace(tmp, path)


def _orbax():
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  return ocp


def _writer(logdir: str):
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  return metric_writers.create_default_writer(logdir, just_logging=jax.process_index() > 0,
                                              asynchronous=False)


def summary(workdir: str) -> str:
  """One line for the end of a run in `workdir`: the exported model, the newest grid, the last
  evaluation (WORKDIR/eval/metrics.jsonl) and where the logs are."""
  w = workdir
  model = os.path.join(w, 'model')
  parts = [f'done: model {model}' if os.path.isdir(model) else 'done']
  samples = os.path.join(w, 'samples')
  grids = sorted(n for n in os.listdir(samples) if n.endswith('.png')) if os.path.isdir(
      samples) else []
  if grids:
    parts.append(f'grids {samples}/ (newest {grids[-1]})')
  metrics = os.path.join(w, 'eval', 'metrics.jsonl')
  if os.path.isfile(metrics):
    with open(metrics) as f:
      lines = [l for l in f.read().splitlines() if l.strip()]
    if lines:
      last = json.loads(lines[-1])
      shown = ', '.join(f'{k} {last[k]:.4g}' for k in last.get('metrics', [])
                        if not k.endswith('_std') and isinstance(last.get(k), (int, float)))
      parts.append(f'metrics {metrics} (step {last.get("step")}: {shown})')
  parts.append(f'logs {os.path.join(w, "logs")} (TensorBoard)')
  return ' | '.join(parts)


class Run:
  """A trainer's run directory and the machinery around its step (module docstring).

  Args:
    config: the run's ConfigDict; reads steps, log_every, checkpoint_every,
      keep_checkpoints and sample_every.
    workdir: the run directory, or None to write nothing.
    defaults: the trainer's default config (for the resume check).
    architecture: a dataclass config recorded as model_config.json, or None.
    name: a label for progress lines and TensorBoard tags (phases).
    total_steps: the run's length (default config.steps).
  """

  def __init__(self, config, workdir: Optional[str], *, defaults=None, architecture=None,
               name: str = '', total_steps: Optional[int] = None, _writer_of=None):
    self.config, self.workdir, self.name = config, workdir, name
    self.total = int(config.steps if total_steps is None else total_steps)
    self.lead = jax.process_index() == 0
    self.progress = Progress(self.total, name=name)
    self._mngr, self._start = None, None
    self._writer = _writer_of._writer if _writer_of is not None else None
    if workdir is None:
      return
    os.makedirs(workdir, exist_ok=True)
    if _writer_of is None:  # the top-level run records the config and owns the writer
      cfg_path = os.path.join(workdir, 'config.json')
      if os.path.exists(cfg_path):
        with open(cfg_path) as f:
          check_resumable(f.read(), config, workdir, defaults)
      elif self.lead:
        with open(cfg_path, 'w') as f:
          f.write(config.to_json_best_effort(indent=2))
      if self.lead and architecture is not None:
        write_architecture(workdir, architecture)
      self._writer = _writer(os.path.join(workdir, 'logs'))
    ocp = _orbax()
    self._mngr = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), 'checkpoints'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=config.keep_checkpoints, create=True, cleanup_tmp_directories=True,
            enable_async_checkpointing=False))

  # -- checkpoints ----------------------------------------------------------
  def restore(self, state):
    """The newest complete checkpoint restored into `state`'s structure and
    shardings, or `state` itself when there is none (or no workdir)."""
    step = self._mngr.latest_step() if self._mngr is not None else None
    if step is None:
      return state
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
    log.info('%sresuming from checkpoint at step %d', self.progress.prefix, step)
    return self._mngr.restore(step, args=_orbax().args.StandardRestore(abstract))

  def save(self, step: int, state):
    if self._mngr is not None:
      self._mngr.save(step, args=_orbax().args.StandardSave(state), force=True)
      self._mngr.wait_until_finished()

  # -- per step ---------------------------------------------------------------
  def start(self, state) -> int:
    """The step `state` is at (after `restore`); progress lines count from it."""
    self._start = int(host(state['step']))
    if self._start < self.total:
      log.info('%sstarting at step %d; the first step compiles the program (about a minute on '
               'a CPU, seconds when the compilation cache has it)', self.progress.prefix,
               self._start)
    return self._start

  def step_done(self, step: int, metrics: Dict[str, Any], state) -> Dict[str, float]:
    """After step `step` (1-based): metrics to floats, the finite check, a
    progress line (and TensorBoard scalars) at log_every and the first and last
    step, a checkpoint at checkpoint_every and at the end. Returns the floats."""
    metrics = {k: float(v) for k, v in host(metrics).items()}
    check_finite(metrics, step - 1)  # named by the step it started from (its state's step)
    c = self.config
    if step % c.log_every == 0 or step == self.total or step == (self._start or 0) + 1:
      log.info(self.progress.line(step, metrics))
      self.scalars(step, metrics)
    if step % c.checkpoint_every == 0 or step == self.total:
      self.save(step, state)
    return metrics

  def scalars(self, step: int, scalars: Dict[str, float]):
    if self._writer is not None and scalars:
      prefix = f'{self.name}/' if self.name else ''
      self._writer.write_scalars(step, {prefix + k: v for k, v in scalars.items()})

  def sample_due(self, step: int) -> bool:
    """True on the lead process of a run with a workdir at sample_every and the end."""
    every = self.config.sample_every
    return bool(self.workdir is not None and self.lead and every and
                (step % every == 0 or step == self.total))

  def grid(self, step: int, images, ncol: Optional[int] = None, note: str = '') -> str:
    """Writes workdir/samples/step_NNNNNN.png and the same grid to TensorBoard."""
    path = save_grid(os.path.join(self.workdir, 'samples', f'step_{step:06d}.png'), images,
                     ncol=ncol)
    if self._writer is not None:
      self._writer.write_images(step, {'samples': make_grid(images, ncol)[None]})
    log.info('wrote %s%s', path, f' ({note})' if note else '')
    return path

  # -- the end ------------------------------------------------------------------
  def export(self, model, info: Dict[str, Any]):
    """Flushes the logs; the lead process writes model/ and then run.json, whose
    presence marks the export complete."""
    if self.workdir is None:
      return
    if self._writer is not None:
      self._writer.flush()
    if self.lead:
      from fsig_jax.convert.load import save_bundle  # pylint: disable=g-import-not-at-top
      save_bundle(model, os.path.join(self.workdir, 'model'), overwrite=True)
      with open(os.path.join(self.workdir, 'run.json'), 'w') as f:
        json.dump(info, f, indent=2)

  # -- phases -------------------------------------------------------------------
  def phase(self, name: str, steps: int) -> 'Run':
    """A Run for a preliminary training stage under workdir/phases/NAME: its own
    checkpoints and progress, this run's config, writer and log cadence."""
    sub = None if self.workdir is None else os.path.join(self.workdir, 'phases', name)
    return Run(self.config, sub, name=name, total_steps=steps, _writer_of=self)

  def _result_path(self) -> Optional[str]:
    return None if self.workdir is None else os.path.join(self.workdir, 'result.npz')

  def load_result(self):
    """A phase's saved result (a nested dict of numpy arrays), or None."""
    path = self._result_path()
    if path is None or not os.path.isfile(path):
      return None
    log.info('%sdone earlier: using its saved result', self.progress.prefix)
    with np.load(path) as f:
      return traverse_util.unflatten_dict({k: f[k] for k in f.files}, sep='/')

  def save_result(self, result):
    """Saves a phase's result (a nested dict of arrays; the lead process writes
    it atomically: a temporary file, then a rename); a resumed run loads it."""
    path = self._result_path()
    if path is not None and self.lead:
      flat = traverse_util.flatten_dict(host(result), sep='/')
      tmp = path + '.tmp.npz'
      np.savez(tmp, **flat)
      os.replace(tmp, path)
