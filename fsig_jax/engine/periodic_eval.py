"""Evaluation during training: every `config.eval_every` steps and at the last step.

The loop calls a `PeriodicEval` on the lead process; it scores the adapted
G_ema with `fsig_jax.metrics.evaluate` under `config.eval` (see
`run_config.eval_config`), appends the result as one JSON line to
WORKDIR/eval/metrics.jsonl, logs a summary and returns the scalars for the
TensorBoard writer ('eval/FID-VGG', ...). Its data are resolved and checked
when the run starts, so a missing reference folder fails before training, not
after the first eval_every steps. A resumed run may append a step twice (the
steps after the last checkpoint are re-run); readers keep the last line per step.
A run killed during an evaluation resumes at that step's checkpoint and makes the
evaluation then (`interrupted`).
"""
import json
import logging
import os
from typing import Dict, Optional

from fsig_jax.data.images import DataError
from fsig_jax.engine.run_config import ConfigError
from fsig_jax.metrics import evaluate
from fsig_jax.run import pause_for_tests
from fsig_jax.utils.files import writing

log = logging.getLogger('fsig_jax')


class PeriodicEval:
  """Evaluates a bundle under `config.eval` and records the result in `workdir/eval`."""

  def __init__(self, config, workdir: str, images, resolution: int):
    e = config.eval
    self.every, self.workdir = int(config.eval_every), workdir
    self.last = int(config.steps)  # the last step is always evaluated
    self.num_samples, self.seed = int(e.num_samples), int(e.seed)
    self.batch_size = int(e.batch_size)
    self.cache_dir = e.cache_dir or os.path.join(workdir, 'eval', 'cache')
    self.path = os.path.join(workdir, 'eval', 'metrics.jsonl')
    data = config.data.source or images
    try:
      reference, few_shot = evaluate.default_sources(data, e.reference, e.few_shot)
      self.reference = evaluate.as_source(reference, resolution)
      self.few_shot = evaluate.as_source(few_shot, resolution)
      self.extractor = evaluate.feature_extractor(e.get('inception_weights', ''))
      self.metrics = evaluate.resolve_metrics(None if e.metrics == 'auto' else e.metrics,
                                              self.extractor, self.reference, self.few_shot)
      if 'fid' in self.metrics and self.num_samples < 2:
        raise ValueError(f'num_samples must be at least 2 for {self.extractor.label}, got '
                         f'{self.num_samples}')
    except (DataError, ValueError) as err:
      raise ConfigError(f'config.eval: {err}') from None
    when = (f'every {self.every} steps and at the last step' if self.every < config.steps
            else 'at the last step')
    log.info('evaluating %s: %s on %d samples (reference: %s, few-shot: %s)',
             when, ','.join(self.metrics), self.num_samples,
             self.reference.description if self.reference else 'the few-shot images',
             self.few_shot.description if self.few_shot else 'none')

  def due(self, step: int, last: int) -> bool:
    """At multiples of eval_every and at the run's last step `last`, so the final
    model is always scored (e.g. --config.steps=1000 with eval_every 400)."""
    return step % self.every == 0 or step == last

  def recorded(self, step: int) -> bool:
    """True when workdir/eval/metrics.jsonl holds an evaluation at `step`."""
    if not os.path.isfile(self.path):
      return False
    with open(self.path) as f:
      lines = f.read().splitlines()
    for line in lines:
      try:
        if json.loads(line).get('step') == step:
          return True
      except ValueError:  # a line cut by a kill mid-append
        continue
    return False

  def interrupted(self, step: int) -> bool:
    """True when a run resumed at `step` (its newest checkpoint) was due an evaluation
    there that it never recorded: killed during it. The loop makes it on resume."""
    return step > 0 and self.due(step, self.last) and not self.recorded(step)

  def __call__(self, step: int, bundle) -> Dict[str, float]:
    log.info('evaluating at step %d: %s on %d samples (minutes on a CPU)...', step,
             ','.join(self.metrics), self.num_samples)
    result = evaluate.evaluate(bundle, reference=self.reference, few_shot=self.few_shot,
                               num_samples=self.num_samples, seed=self.seed,
                               metrics=self.metrics, cache_dir=self.cache_dir,
                               batch_size=self.batch_size, extractor=self.extractor)
    result = {'step': int(step), **result}
    pause_for_tests('eval', f'step {step}')  # kill tests: inside the evaluation, before its record
    with writing(self.path, '--workdir'):
      os.makedirs(os.path.dirname(self.path), exist_ok=True)
      cut = os.path.isfile(self.path) and _ends_without_newline(self.path)
      with open(self.path, 'a') as f:  # a line cut by a kill stays alone on its line
        f.write(('\n' if cut else '') + json.dumps(evaluate.json_ready(result)) + '\n')
    log.info('eval at step %d: %s', step, evaluate.summary(result))
    return {f'eval/{k}': v for k, v in evaluate.scalars(result).items()}


def _ends_without_newline(path: str) -> bool:
  with open(path, 'rb') as f:
    f.seek(0, os.SEEK_END)
    if f.tell() == 0:
      return False
    f.seek(-1, os.SEEK_END)
    return f.read(1) != b'\n'


def from_config(config, workdir: Optional[str], images, resolution: int) -> Optional[PeriodicEval]:
  """A PeriodicEval when config.eval_every > 0 and there is a workdir, else None."""
  if not workdir or not config.eval_every:
    return None
  return PeriodicEval(config, workdir, images, resolution)
