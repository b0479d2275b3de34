"""The run's logs: TensorBoard event files written without TensorFlow, read back by
TensorBoard's own loader; without the tensorboard package, scalars as JSON lines,
and the run is still timed either way."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from fsig_jax import run as run_lib
from fsig_jax.engine import export, run_config


def test_event_files_are_read_by_tensorboard_and_time_the_run(tmp_path):
  import io  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import event_file_loader  # pylint: disable=g-import-not-at-top
  cfg = run_config.default_config()
  cfg.steps = 3
  wd = tmp_path / 'wd'
  grid = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
  for steps in ((1, 2), (3,)):  # two processes: a run and its resume
    run = run_lib.Run(cfg, str(wd))
    for s in steps:
      run.scalars(s, {'loss': 0.5 * s, 'r1': 2.0})
    run._writer.write_images(steps[-1], {'samples': grid[None]})  # pylint: disable=protected-access
    run._writer.close()  # pylint: disable=protected-access
  files = sorted((wd / 'logs').glob('events.out.tfevents.*'))
  assert len(files) == 2
  events = list(event_file_loader.LegacyEventFileLoader(str(files[0])).Load())
  assert events[0].file_version == 'brain.Event:2'
  scalars = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value
             if v.HasField('simple_value')]
  assert scalars == [(1, 'loss', 0.5), (1, 'r1', 2.0), (2, 'loss', 1.0), (2, 'r1', 2.0)]
  image = [v.image for e in events for v in e.summary.value if v.HasField('image')]
  assert len(image) == 1 and (image[0].height, image[0].width, image[0].colorspace) == (5, 7, 3)
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image[0].encoded_image_string))),
                                grid)
  t = export.training_time(str(wd))
  assert [(s['first_step'], s['last_step']) for s in t['segments']] == [(1, 2), (3, 3)]


def test_logging_does_not_import_tensorflow(tmp_path):
  code = ('import sys; from fsig_jax import run; from fsig_jax.engine import run_config; '
          f'r = run.Run(run_config.default_config(), {str(tmp_path / "wd")!r}); '
          'r.scalars(1, {"a": 1.0}); '
          'assert isinstance(r._writer, run.EventFileWriter), r._writer; '
          'assert "tensorflow" not in sys.modules, "tensorflow was imported"')
  subprocess.run([sys.executable, '-c', code], check=True)


def test_without_tensorboard_scalars_go_to_json_lines_and_time_the_run(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorboard.compat.proto', None)  # as if not installed
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
