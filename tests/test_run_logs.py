"""The run's logs without TensorFlow: scalars as JSON lines, and the run is still timed."""
import json
import sys

from fsig_jax import run as run_lib
from fsig_jax.engine import export, run_config


def test_without_tensorflow_scalars_go_to_json_lines_and_time_the_run(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'clu', None)  # clu's writers import TensorFlow
  cfg = run_config.default_config()
  cfg.steps = 3
  wd = str(tmp_path / 'wd')
  for steps in ((1, 2), (3,)):  # two processes: a run and its resume
    run = run_lib.Run(cfg, wd)
    writer = run._writer  # pylint: disable=protected-access
    assert isinstance(writer, run_lib.JsonLinesWriter)
    for s in steps:
      run.scalars(s, {'loss': 0.5 * s})
    writer.close()
  lines = [json.loads(l) for l in (tmp_path / 'wd' / 'logs' / 'scalars.jsonl').open()]
  assert sum('process_start' in l for l in lines) == 2
  assert [(l['step'], l['loss']) for l in lines if 'step' in l] == [(1, 0.5), (2, 1.0), (3, 1.5)]
  t = export.training_time(wd)
  assert t['processes'] == 2 and t['seconds'] >= 0
  assert [(s['first_step'], s['last_step']) for s in t['segments']] == [(1, 2), (3, 3)]
  assert export.training_time(wd, up_to_step=2)['processes'] == 1
  with open(tmp_path / 'wd' / 'logs' / 'scalars.jsonl', 'a') as f:
    f.write('{"step": 4, "ti')  # a line cut short by a kill is skipped
  assert export.training_time(wd)['processes'] == 2
