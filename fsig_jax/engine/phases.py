"""Training phases a method runs before the main adaptation (AdAM's probing).

A method's init calls `ictx.run_phase(name, method, key=, steps=, data_seed=,
finish=)` (`methods.context.PhaseRunner`); this module is the adaptation
trainer's implementation. The phase trains `method` with the engine's own state
and step on the target images, as its own `Run` (`run.phase`: progress lines,
checkpoints every config.checkpoint_every steps under WORKDIR/phases/NAME,
resume after a kill where it stopped), then saves `finish(final state)` there;
a resumed run loads that result instead of training the phase again.
"""
import functools
from typing import Optional

import jax
import numpy as np

from fsig_jax.engine import parallel
from fsig_jax.engine.batches import Batches
from fsig_jax.engine.state import init_state, make_optimizers
from fsig_jax.engine.step import make_train_step
from fsig_jax.run import Run


def run_phase(bundle, hp, images, name: str, method, *, key: jax.Array, steps: int,
              data_seed: int, finish, run: Optional[Run] = None, mesh=None):
  """Trains `method` for `steps` steps from `key`; returns finish(final state).

  Batches: hp.batch_size target images from `BatchSampler(seed=data_seed,
  flip=True)`, a pure function of (data_seed, step) as in the main run.
  """
  sub = run.phase(name, steps) if run is not None else None
  if sub is not None:
    result = sub.load_result()
    if result is not None:
      return result
  images = np.asarray(images, np.float32)
  optimizers = make_optimizers(hp, bundle.config, method.late_start)
  state = init_state(bundle, hp, method, key, images=images, optimizers=optimizers)
  if mesh is not None:
    state = parallel.replicate(state, mesh)
  step_fn = make_train_step(bundle.config, hp, method, mesh=mesh, optimizers=optimizers)
  batches = Batches(images, hp.batch_size, seed=data_seed, flip=True, method=method,
                    resolution=bundle.config.resolution, mesh=mesh)
  start = 0
  if sub is not None:
    state = sub.restore(state)
    start = sub.start(state)
  for step in range(start, steps):
    state, metrics = step_fn(state, *batches(step))
    if sub is not None:
      sub.step_done(step + 1, metrics, state)
  result = finish(state)
  if sub is not None:
    sub.save_result(result)
  return result


def runner(run: Optional[Run] = None, mesh=None):
  """The PhaseRunner init_state binds (run=None: in memory, nothing written)."""
  return functools.partial(run_phase, run=run, mesh=mesh)
