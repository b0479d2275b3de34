"""Models out of training workdirs: `bundle_from_workdir`, also mid-run.

A workdir written by `loop.train` holds `config.json`, `model_config.json`
(the architecture), `checkpoints/<step>/` (orbax, the plain-dict train state)
and, once a run has finished, `model/` (`save_bundle`) and `run.json`.
`bundle_from_workdir` uses `model/` when it is complete and not older than the
newest checkpoint, and otherwise restores the newest (or the asked-for)
checkpoint's G_ema, G, D and generator buffers. The architecture comes from
model_config.json, or in workdirs older than that file from config.json's
`model.checkpoint` (a `random:...` preset or the source checkpoint the run
started from). Nothing is written, so a live run can be evaluated while it
trains (a checkpoint gets its step name only when complete; a half-written
one is never read).
"""
import json
import os
from typing import Optional, Tuple

import numpy as np

from fsig_jax.convert.errors import CheckpointError
from fsig_jax.convert.load import _is_bundle_dir, load_bundle, load_pretrained
from fsig_jax.engine.state import state_to_bundle
from fsig_jax.models import presets
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.config import StyleGAN2Config
from fsig_jax.run import ARCHITECTURE_FILE, SCALARS_JSONL



def is_workdir(path: str) -> bool:
  """True for a training workdir (it has config.json and checkpoints/ or model/)."""
  return (os.path.isfile(os.path.join(path, 'config.json')) and
          (os.path.isdir(os.path.join(path, 'checkpoints')) or
           os.path.isdir(os.path.join(path, 'model'))))


def load_model_or_workdir(path: str, step: Optional[int] = None) -> ModelBundle:
  """The model at `path`: a training workdir's model (`bundle_from_workdir`; `step`
  picks a checkpoint, None the newest), else a checkpoint file or model directory
  (`load_pretrained`, which has no steps); what launch/generate.py, project.py,
  export.py and GPD's `teacher.adapted` load."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise CheckpointError(f'{path} does not exist: pass a .pt, .pkl, fsig-jax model '
                          'directory or training workdir')
  if is_workdir(path):
    return bundle_from_workdir(path, step)[0]
  if step is not None:
    raise CheckpointError(f'step {step} needs a training workdir: {path} is a model file, '
                          'which has no steps')
  return load_pretrained(path)


def read_run_config(workdir: str) -> dict:
  """The workdir's config.json as a plain dict, or a CheckpointError saying why not."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.isdir(workdir):
    raise CheckpointError(f'{workdir} does not exist (expected a training workdir with '
                          'config.json and checkpoints/)')
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise CheckpointError(f'{workdir} is not a training workdir: it has no config.json '
                          '(pass the --workdir of a launch/main.py run, or --checkpoint=PATH '
                          'for a model file)') from None
  except ValueError as e:
    raise CheckpointError(f'{path} is not valid JSON ({e})') from None


def checkpoint_steps(workdir: str) -> list:
  """Steps of the finished checkpoints in workdir/checkpoints, ascending.

  orbax writes a checkpoint under a temporary name and renames it to its step
  when complete, so only finished ones have a plain number as their name.
  """
  ckdir = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(ckdir):
    return []
  return sorted(int(d) for d in os.listdir(ckdir)
                if d.isdigit() and os.path.isdir(os.path.join(ckdir, d, 'default')))


def _config_from_json(d: dict):
  """An architecture config from `run.write_architecture`'s JSON."""
  arch = d.get('arch', 'stylegan2')
  if arch == 'stylegan2':
    cls = StyleGAN2Config
  elif arch == 'progan':
    from fsig_jax.models.progan import ProGANConfig as cls  # pylint: disable=g-import-not-at-top
  else:
    raise ValueError(f'unknown architecture {arch!r}')
  return cls.from_dict({k: tuple(v) if isinstance(v, list) else v for k, v in d['config'].items()})


def architecture(workdir: str, run_config: dict):
  """The StyleGAN2 config a run trains.

  From workdir/model_config.json (written by the loop), else, for workdirs
  older than that file, from config.json's model.checkpoint (a `random:...`
  preset or the source checkpoint).
  """
  path = os.path.join(workdir, ARCHITECTURE_FILE)
  if os.path.isfile(path):
    try:
      with open(path) as f:
        return _config_from_json(json.load(f))
    except (OSError, ValueError, TypeError, KeyError) as e:
      raise CheckpointError(f'{path}: unreadable architecture ({e})') from None
  spec = (run_config.get('model') or {}).get('checkpoint', '')
  if not spec:
    raise CheckpointError(f'{workdir} has neither {ARCHITECTURE_FILE} nor a model.checkpoint in '
                          'config.json, so the architecture of its checkpoints is unknown')
  if spec.startswith('random:'):
    try:
      return presets.parse_random_spec(spec)
    except ValueError as e:
      raise CheckpointError(str(e)) from None
  if not os.path.exists(spec):
    raise CheckpointError(f'config.json names the source model {spec!r}, which no longer '
                          'exists; its architecture is needed to read the checkpoints')
  return load_pretrained(spec).config


def _finished_model(workdir: str) -> Optional[int]:
  """The step of a complete model/ (run.json is written after it), else None."""
  run_json = os.path.join(workdir, 'run.json')
  if not (_is_bundle_dir(os.path.join(workdir, 'model')) and os.path.isfile(run_json)):
    return None
  try:
    with open(run_json) as f:
      return int(json.load(f)['steps'])
  except (OSError, ValueError, KeyError, TypeError):
    return None


def restore_networks(workdir: str, step: int) -> dict:
  """{G_ema, G, D, G_buffers, method} of the checkpoint at `step`, as numpy trees.

  Only these subtrees are read (optimiser states are skipped), as host numpy
  arrays, so a checkpoint written on any device layout loads anywhere. The
  method state is needed where a method re-parameterises the networks (AdAM).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.abspath(workdir), 'checkpoints', str(step), 'default')
  wanted = ('G_ema', 'G', 'D', 'G_buffers')
  try:
    with ocp.PyTreeCheckpointer() as ckptr:
      meta = ckptr.metadata(path)
      tree = getattr(meta, 'item_metadata', meta)
      tree = getattr(tree, 'tree', tree)
      missing = [k for k in wanted if k not in tree]
      if missing:
        raise CheckpointError(f'{path} is not an fsig-jax train state (no {missing})')
      wanted = wanted + (('method',) if 'method' in tree else ())
      item = {k: tree[k] for k in wanted}
      restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
      state = ckptr.restore(path, args=ocp.args.PyTreeRestore(
          item=item, restore_args=restore_args, partial_restore=True))
  except CheckpointError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (orbax raises many types)
    raise CheckpointError(f'cannot read checkpoint {path}: {type(e).__name__}: {e}') from None
  return {k: jax.tree.map(np.asarray, state[k]) for k in wanted}


def bundle_from_workdir(workdir: str, step: Optional[int] = None) -> Tuple[ModelBundle, int]:
  """The model of a training workdir -> (ModelBundle with G_ema, G and D, its step).

  Args:
    workdir: a `launch/main.py` / `loop.train` workdir, finished or still running.
    step: a checkpoint step; None: the newest of model/ and the checkpoints.

  Raises:
    CheckpointError: not a workdir, no checkpoint yet, no checkpoint at `step`
      (the message lists those that exist), or an unreadable checkpoint.
  """
  workdir = os.fspath(workdir)
  cfg = read_run_config(workdir)
  steps = checkpoint_steps(workdir)
  final = _finished_model(workdir)
  if final is not None and (step is None and (not steps or final >= steps[-1])
                            or step == final):
    bundle = load_bundle(os.path.join(workdir, 'model'))
    return bundle.replace(source=f'{workdir} (model/, step {final})'), final
  if not steps:
    every = cfg.get('checkpoint_every', '?')
    raise CheckpointError(f'{workdir} has no finished checkpoint yet (the first is written at '
                          f'step {every}, config checkpoint_every); try again later')
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise CheckpointError(f'{workdir} has no checkpoint at step {step}; it has steps {steps}'
                          + (f' and model/ at step {final}' if final is not None else ''))
  nets = restore_networks(workdir, step)
  model_cfg = architecture(workdir, cfg)
  nets.setdefault('method', {})
  # state_to_bundle folds method re-parameterisations (AdAM) into G and D.
  bundle = state_to_bundle(nets, ModelBundle(config=model_cfg, nets={}),
                           source=f'{workdir} (checkpoint at step {step})')
  return bundle, step


def training_time(workdir: str, up_to_step: Optional[int] = None) -> dict:
  """Wall time a run has trained (up to a step), summed over its processes (resumes).

  Each process writes one TensorBoard event file in workdir/logs; its span is
  from the file's creation (process start, so compilation is included) to its
  last logged step. Steps redone after an interruption count again, as they
  cost time again. A run logged without TensorFlow (`fsig_jax.run.JsonLinesWriter`,
  logs/scalars.jsonl) is timed the same way from its process-start lines. Returns
  {'seconds', 'processes', 'segments': [{'first_step', 'last_step', 'seconds'}]};
  zeros when nothing has been logged.
  """
  segments = _tensorboard_segments(workdir, up_to_step) or _jsonl_segments(workdir, up_to_step)
  return {'seconds': round(sum(s['seconds'] for s in segments), 1),
          'processes': len(segments), 'segments': segments}


def _segment(events: list) -> Optional[dict]:
  """[(wall time, step)] of one process, its start first -> its segment, or None."""
  steps = [s for _, s in events if s > 0]
  if not steps:
    return None
  return {'first_step': min(steps), 'last_step': max(steps),
          'seconds': round(events[-1][0] - events[0][0], 1)}


def _jsonl_segments(workdir: str, up_to_step: Optional[int]) -> list:
  path = os.path.join(workdir, 'logs', SCALARS_JSONL)
  if not os.path.isfile(path):
    return []
  processes = []
  with open(path) as f:
    for line in f:
      try:
        d = json.loads(line)
      except ValueError:
        continue  # a line cut short when a run was killed
      if 'process_start' in d:
        processes.append([(d['process_start'], 0)])
      elif processes and 'step' in d and (up_to_step is None or d['step'] <= up_to_step):
        processes[-1].append((d['time'], d['step']))
  return [s for s in map(_segment, processes) if s is not None]


def _tensorboard_segments(workdir: str, up_to_step: Optional[int]) -> list:
  logdir = os.path.join(workdir, 'logs')
  files = sorted(n for n in os.listdir(logdir) if 'tfevents' in n) if os.path.isdir(logdir) else []
  if not files:
    return []
  from tensorboard.backend.event_processing import event_file_loader  # pylint: disable=g-import-not-at-top
  segments = []
  for name in files:
    events = [(e.wall_time, e.step) for e in
              event_file_loader.LegacyEventFileLoader(os.path.join(logdir, name)).Load()
              if up_to_step is None or e.step <= up_to_step]
    segment = _segment(events)
    if segment is not None:
      segments.append(segment)
  return segments
