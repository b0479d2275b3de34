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
  * the config check (`check_config`): a negative step count, a batch size
    or learning rate that is not positive, ... anywhere in the config is one
    ConfigError line naming the field, before anything runs;
  * orbax checkpoints: atomic (written under a temporary name, renamed when
    complete, so a run killed mid-write resumes from the last complete one),
    keep-N (`config.keep_checkpoints`), restore of the newest one; a failed
    write (full disk, no permission) is a WriteError naming the path, and
    the last complete checkpoint stays the newest;
  * TensorBoard logs (scalars and sample grids; `utils.tensorboard`, no
    TensorFlow needed), on the lead process only;
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

from fsig_jax.errors import CheckpointError, ConfigError, NonFiniteLossError
from fsig_jax.utils.files import check_writable, make_dirs, write_text, writing
from fsig_jax.utils.images import make_grid, save_grid
from fsig_jax.utils.memory import trim_after_compiles
from fsig_jax.utils.tensorboard import EventFileWriter

log = logging.getLogger('fsig_jax')

# Fields that may differ when resuming a workdir (they do not change the run).
RESUMABLE_CHANGES = ('steps', 'log_every', 'checkpoint_every', 'sample_every',
                     'keep_checkpoints', 'eval_every', 'num_samples', 'eval', 'max_devices',
                     'data.stream_above')
ARCHITECTURE_FILE = 'model_config.json'

# Numeric settings checked wherever they appear in a config (any trainer, nested
# configs such as gpd's teacher.adapt too): name -> (valid, what a valid value is).
_POSITIVE = (lambda v: v > 0, 'positive (> 0)')
_COUNT = (lambda v: v >= 0, 'a count >= 0')
_FRACTION = (lambda v: 0 <= v <= 1, 'in [0, 1]')
_WEIGHT = (lambda v: v >= 0, '>= 0')
CONFIG_RULES = {
    'steps': (lambda v: v >= 0, 'a step count >= 0 (the run length)'),
    'batch_size': _POSITIVE, 'lr': _POSITIVE, 'f_lr': _POSITIVE,
    'log_every': _POSITIVE, 'checkpoint_every': _POSITIVE,
    'keep_checkpoints': (lambda v: v >= 1, 'at least 1'),
    'sample_every': (_COUNT[0], '>= 0 (0: no sample grids)'),
    'eval_every': (_COUNT[0], '>= 0 (0: no periodic evaluation)'),
    'num_samples': _POSITIVE, 'seed': (_COUNT[0], 'a seed >= 0'),
    'max_images': (_COUNT[0], '>= 0 (0: all)'), 'min_images': _COUNT,
    'stream_above': (_COUNT[0], '>= 0 (0: never stream)'),
    'beta1': (lambda v: 0 <= v < 1, 'in [0, 1)'), 'beta2': (lambda v: 0 <= v < 1, 'in [0, 1)'),
    'ema_beta': _FRACTION, 'w_avg_beta': _FRACTION, 'mixing_prob': _FRACTION,
    'augment_p': _FRACTION, 'ada_target': _FRACTION, 'ada_length': _POSITIVE,
    'r1_gamma': _WEIGHT, 'pl_weight': _WEIGHT, 'gp_weight': _WEIGHT, 'drift': _WEIGHT,
    'weight_decay': _WEIGHT, 'd_reg_every': _COUNT, 'g_reg_every': _COUNT,
    'train_kimg': _WEIGHT, 'transition_kimg': _WEIGHT,
}


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


def check_config(config, prefix: str = 'config'):
  """Raises ConfigError for the first numeric setting `CONFIG_RULES` refuses (a
  negative steps, a batch size or learning rate that is not positive, ...), naming
  the field, its value, what is valid and the override that fixes it."""
  for key in sorted(config.keys()):
    value, name = config[key], f'{prefix}.{key}'
    if hasattr(value, 'keys'):
      check_config(value, name)
      continue
    rule = CONFIG_RULES.get(key)
    if rule is None or isinstance(value, bool) or not isinstance(value, (int, float)):
      continue
    valid, what = rule
    if not (np.isfinite(value) and valid(value)):
      raise ConfigError(f'{name} = {value!r} is invalid: it must be {what}; pass '
                        f'--{name}=VALUE with a valid value (or fix it in the config file)')


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
    write_text(path, json.dumps({'arch': getattr(cfg, 'arch', 'stylegan2'),
                                 'config': dataclasses.asdict(cfg)}, indent=2), '--workdir')


def check_workdir(workdir: Optional[str]) -> None:
  """Creates `workdir` and checks that it takes files, so a workdir that is a file, a
  read-only folder or a full disk is one WriteError line before any data is loaded."""
  if workdir is not None:
    check_writable(workdir, '--workdir')


def pause_for_tests(what: str, detail: str = '') -> None:
  """A test hook, off unless FSIG_TEST_{WHAT}_DELAY='SECONDS:MARKER' is set (only tests
  set it: FSIG_TEST_CHECKPOINT_DELAY, FSIG_TEST_EVAL_DELAY): appends `detail` to the
  file MARKER, then sleeps SECONDS, so a kill test knows the process is inside WHAT
  (a checkpoint write, an evaluation) and kills it there (tests/test_kill_resume.py)."""
  spec = os.environ.get(f'FSIG_TEST_{what.upper()}_DELAY')
  if spec:
    seconds, _, marker = spec.partition(':')
    if marker:
      with open(marker, 'a') as f:
        f.write(f'{detail}\n')
    time.sleep(float(seconds))


def _before_commit(tmp_path: str) -> None:
  """Called inside every checkpoint save, after its arrays are written to the temporary
  folder and before the commit: FSIG_TEST_CHECKPOINT_DELAY pauses here (tests only)."""
  pause_for_tests('checkpoint', tmp_path)


def _temporary_path_class():
  """orbax's atomic-rename temporary folder, with `_before_commit` before its commit."""
  from orbax.checkpoint.path import atomicity  # pylint: disable=g-import-not-at-top

  class TemporaryPath(atomicity.AtomicRenameTemporaryPath):

    async def finalize(self, *args, **kwargs):
      _before_commit(str(self.get()))
      return await super().finalize(*args, **kwargs)

  return TemporaryPath


def _orbax():
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  return ocp


SCALARS_JSONL = 'scalars.jsonl'


class JsonLinesWriter:
  """The log writer where TensorBoard's cannot be made (no tensorboard package,
  as on some accelerator images). One JSON line per write in
  logdir/scalars.jsonl: {'process_start': time} when a process opens it (so
  `engine.export.training_time` can time the run, as it does from TensorBoard
  event files), then {'step', 'time', name: value, ...}. Images are not logged:
  the run writes its grids to WORKDIR/samples/ either way."""

  def __init__(self, logdir: str):
    make_dirs(logdir, '--workdir')
    self._f = open(os.path.join(logdir, SCALARS_JSONL), 'a')  # pylint: disable=consider-using-with
    self._line({'process_start': time.time()})

  def _line(self, d: dict):
    self._f.write(json.dumps(d) + '\n')
    self._f.flush()

  def write_scalars(self, step: int, scalars: Dict[str, Any]):
    self._line({'step': int(step), 'time': time.time(),
                **{k: float(v) for k, v in scalars.items()}})

  def write_images(self, step: int, images):
    del step, images

  def flush(self):
    self._f.flush()

  def close(self):
    self._f.close()


def _writer(logdir: str):
  """The lead process's log writer: TensorBoard event files (`utils.tensorboard`), or
  JSON lines where the tensorboard package cannot be imported; None elsewhere
  (every process prints its own progress lines)."""
  if jax.process_index() > 0:
    return None
  try:
    return EventFileWriter(logdir)
  except ImportError as e:
    log.warning('no TensorBoard logs (%s: install tensorboard for them); scalars go to '
                '%s', e, os.path.join(logdir, SCALARS_JSONL))
    return JsonLinesWriter(logdir)


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
    trim_after_compiles()  # compiler garbage off the heap before each step program runs
    self.total = int(config.steps if total_steps is None else total_steps)
    self.lead = jax.process_index() == 0
    self.progress = Progress(self.total, name=name)
    self._mngr, self._start = None, None
    self._writer = _writer_of._writer if _writer_of is not None else None
    if _writer_of is None:
      check_config(config)
    if workdir is None:
      return
    make_dirs(workdir, '--workdir')
    if _writer_of is None:  # the top-level run records the config and owns the writer
      cfg_path = os.path.join(workdir, 'config.json')
      if os.path.exists(cfg_path):
        with open(cfg_path) as f:
          check_resumable(f.read(), config, workdir, defaults)
      elif self.lead:
        write_text(cfg_path, config.to_json_best_effort(indent=2), '--workdir')
      if self.lead and architecture is not None:
        write_architecture(workdir, architecture)
      self._writer = _writer(os.path.join(workdir, 'logs'))
    ocp = _orbax()
    self._mngr = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), 'checkpoints'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=config.keep_checkpoints, create=True, cleanup_tmp_directories=True,
            enable_async_checkpointing=False, temporary_path_class=_temporary_path_class()))

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
    try:
      return self._mngr.restore(step, args=_orbax().args.StandardRestore(abstract))
    except ValueError as e:  # orbax: tree structures or shapes differ
      what = str(e).strip().splitlines()[0].split('. ')[0].rstrip(':.')
      raise CheckpointError(
          f'the checkpoint at step {step} in {self._mngr.directory} does not fit the training '
          f'state this run builds ({what}): it was written by another version of fsig-jax or '
          'for another model. Fix: resume it with the version that wrote it, or start a new '
          '--workdir') from None

  def save(self, step: int, state):
    """Checkpoints `state` at `step`. A failed write (full disk, no permission) is a
    WriteError naming the folder; the incomplete checkpoint is never committed, so
    the last complete one stays the newest and a re-run resumes from it."""
    if self._mngr is None:
      return
    last = self._mngr.latest_step()
    kept = f'checkpoint {step} was not saved' + (
        '' if last is None else f'; the last complete one (step {last}) is kept and a re-run '
        'of the same command resumes from it')
    with writing(str(self._mngr.directory), '--workdir', kept):
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
    grid = make_grid(images, ncol)[None]  # tiled once, for the file and for TensorBoard
    path = save_grid(os.path.join(self.workdir, 'samples', f'step_{step:06d}.png'), grid, pad=0)
    if self._writer is not None:
      self._writer.write_images(step, {'samples': grid})
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
      with writing(os.path.join(self.workdir, 'model'), '--workdir'):
        save_bundle(model, os.path.join(self.workdir, 'model'), overwrite=True)
      write_text(os.path.join(self.workdir, 'run.json'), json.dumps(info, indent=2),
                 '--workdir')

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
      with writing(path, '--workdir'):
        np.savez(tmp, **flat)
        os.replace(tmp, path)
