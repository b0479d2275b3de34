"""Seconds from launching a run to its first step, cold and warm, phase by phase.

  python benchmarks/start_time.py                      # quickstart, 1 cold + 2 warm runs
  python benchmarks/start_time.py --warm=3 --config=configs/fsig_offline.py:cdc,anime_sketch

Runs `launch/main.py --config=CONFIG --config.steps=1` in fresh workdirs, each
in its own process: first with an empty compilation cache (a fresh temporary
folder, FSIG_CACHE_DIR), then `--warm` times with the cache that first run
filled, as a user's second run of the same config on the same machine. The
launcher runs with JAX_LOG_COMPILES=1 and the phases are read from its log
timestamps, in seconds after the process was started:

  ready      imports, model, data and state built ('starting at step')
  traced     the training step traced to a jaxpr
  lowered    ... and lowered to StableHLO
  compiled   ... and compiled, or loaded from a cache: the step starts here
  stepped    the first step (lazy R1 and path length both run in it) done

`cache` says where the step came from: 'executable' (fsig-jax's executable
cache, `fsig_jax/utils/executable_cache.py`: no tracing or lowering, so
`traced` and `lowered` are null), 'xla' (XLA's persistent cache, after tracing
and lowering) or 'none' (compiled).

Evaluation during and after the run is off (`--config.eval_every=0`; --set
replaces it, e.g. for a student trainer, whose config has other fields):

  python benchmarks/start_time.py --config=configs/gpd_anime_sketch.py:bl \\
      --step=step_fn:gpd_step --set=eval.test_pairs=0 --set=sample_every=0

To compare two versions of the code, run this from each checkout on the same
machine, one after the other; the README's numbers come from such a pair.
"""
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fsig_jax.utils.cli import run_main  # noqa: E402  pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS


def _define_flags():  # at run time only: tests import this module beside other benchmarks
  flags.DEFINE_string('config', 'configs/quickstart.py', 'the run config (as launch/main.py)')
  flags.DEFINE_integer('warm', 2, 'warm-cache runs after the cold one')
  flags.DEFINE_string('out', '', 'also write the rows as JSON here')
  flags.DEFINE_string('step', 'train_step', 'the step program timed: JIT_NAME[:CACHE_NAME], '
                      'its jitted function\'s name and its executable-cache name (a student '
                      'trainer: e.g. step_fn:gpd_step)')
  flags.DEFINE_multi_string('set', ['eval_every=0'], 'config settings NAME=VALUE, each '
                            'given as --config.NAME=VALUE (default: evaluation off)')


PHASES = ('ready', 'traced', 'lowered', 'compiled', 'stepped')


def _events(jit_name: str, cache_name: str):
  """The log markers of each of PHASES for a step jitted as `jit_name` and kept in
  the executable cache as `cache_name`; and the markers of the two caches' hits."""
  hit = f'{cache_name}: loaded the compiled program'
  markers = (('starting at step',), (f'Finished tracing {jit_name}',),
             (f'MLIR module conversion jit({jit_name})',),
             (f'XLA compilation of jit({jit_name})', hit), ('step 1/',))
  return (tuple(zip(PHASES, markers)), hit,
          f"Persistent compilation cache hit for 'jit_{jit_name}'")


def _step_names(spec: str):
  jit_name, _, cache_name = spec.partition(':')
  return jit_name, cache_name or jit_name


_STAMP = re.compile(r'[IWE](\d\d)(\d\d) (\d\d):(\d\d):(\d\d\.\d+)')


def _seconds(line: str, year: int):
  m = _STAMP.match(line)
  if not m:
    return None
  t = datetime.datetime(year, int(m[1]), int(m[2]), int(m[3]), int(m[4]),
                        tzinfo=datetime.timezone.utc)
  return t.timestamp() + float(m[5])


def phases(log_text: str, t0: float, year: int, step: str = 'train_step') -> dict:
  """The phases' seconds after t0 (the process's start) from a launcher's log;
  `step` as --step."""
  events, executable_hit, xla_hit = _events(*_step_names(step))
  row = {}
  for line in log_text.splitlines():
    t = _seconds(line, year)
    for name, markers in events:
      if t is not None and any(m in line for m in markers) and name not in row:
        row[name] = round(t - t0, 2)
  row['cache'] = ('executable' if executable_hit in log_text else
                  'xla' if xla_hit in log_text else 'none')
  skipped = ('traced', 'lowered') if row['cache'] == 'executable' else ()
  missing = [n for n, _ in events if n not in row and n not in skipped]
  if missing:
    raise SystemExit(f'start_time: no {missing} in the run\'s log (absl log lines with '
                     f'timestamps expected); its end:\n{log_text[-2000:]}')
  for name in skipped:
    row[name] = None
  return row


def one_run(config: str, cache: str, workdir: str, step: str = 'train_step',
            settings=('eval_every=0',)) -> dict:
  env = dict(os.environ, FSIG_CACHE_DIR=cache, JAX_LOG_COMPILES='1', TZ='UTC')
  env.pop('JAX_COMPILATION_CACHE_DIR', None)  # FSIG_CACHE_DIR decides
  env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
  cmd = [sys.executable, os.path.join(ROOT, 'launch', 'main.py'), f'--config={config}',
         '--config.steps=1', *[f'--config.{a}' for a in settings], f'--workdir={workdir}']
  t0 = time.time()
  p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
  if p.returncode:
    raise SystemExit(f'start_time: the run failed (exit {p.returncode}):\n{p.stderr[-3000:]}')
  return phases(p.stderr, t0, datetime.datetime.now(datetime.timezone.utc).year, step)


def main(argv):
  del argv
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    cache = os.path.join(tmp, 'xla_cache')
    for i in range(1 + FLAGS.warm):
      kind = 'cold' if i == 0 else 'warm'
      row = {'run': kind, **one_run(FLAGS.config, cache, os.path.join(tmp, f'wd{i}'),
                                    FLAGS.step, FLAGS.set)}
      rows.append(row)
      print(f'{kind}: ' + '  '.join(f'{k} {row[k]:.1f}s' if row[k] is not None else f'{k} -'
                                    for k in PHASES) +
            f'  (step from the cache: {row["cache"]})', flush=True)
  if FLAGS.out:
    with open(FLAGS.out, 'w') as f:
      json.dump({'config': FLAGS.config, 'step': FLAGS.step, 'set': FLAGS.set, 'rows': rows},
                f, indent=2)


if __name__ == '__main__':
  _define_flags()
  run_main(main)
