"""Outputs that cannot be written (a workdir that is a file, a read-only folder, a full
disk) end in one line naming the path and the fix. (A checkpoint save that fails
midway: test_engine_loop.test_full_disk_mid_checkpoint_...)

Tests run as root here, where a chmod-read-only folder is still writable, so the
failures are injected (monkeypatched writers raising the OSError the kernel would)
or made with a file where a folder must be, which fails for root too."""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from engine_utils import tiny_bundle, tiny_images
from fsig_jax import api
from fsig_jax.convert.load import save_bundle
from fsig_jax.errors import WriteError
from fsig_jax.utils import files, images
from test_bad_inputs import assert_one_clear_line, run_launcher
from test_engine_loop import tiny_config


def raise_oserror(code):
  def writer(*args, **kwargs):
    raise OSError(code, os.strerror(code), str(args[0]) if args else '')
  return writer


@pytest.mark.parametrize('code,why,fix', [
    (errno.ENOSPC, 'no space left on the device', 'free disk space'),
    (errno.EACCES, 'permission denied', 'fix its permissions'),
    (errno.EROFS, 'the file system is read-only', 'on a writable disk'),
])
def test_save_grid_failure_is_one_line_naming_the_path(code, why, fix, tmp_path, monkeypatch):
  monkeypatch.setattr(images.Image.Image, 'save', raise_oserror(code))
  path = str(tmp_path / 'out' / 'grid.png')
  with pytest.raises(WriteError) as e:
    images.save_grid(path, tiny_images(2))
  msg = str(e.value)
  assert msg.startswith(f'cannot write {path}: {why}') and fix in msg and '\n' not in msg, msg
  assert os.listdir(tmp_path / 'out') == []  # no temporary file left behind


def test_a_file_in_the_way_is_named(tmp_path):
  (tmp_path / 'runs').write_text('not a folder')
  with pytest.raises(WriteError, match=r'runs is a file, not a folder.*another --workdir'):
    files.make_dirs(str(tmp_path / 'runs' / 'exp1'), '--workdir')
  with pytest.raises(WriteError, match=r'runs is a file, not a folder'):
    api.train(tiny_config(2), str(tmp_path / 'runs'))  # before any data is loaded


def test_read_only_workdir_fails_before_training(tmp_path, monkeypatch):
  """A workdir that takes no files (read-only; injected: root writes anyway) is one
  WriteError from api.train before the model or data are touched."""
  real_open = open

  def read_only_open(path, mode='r', *a, **kw):
    if 'w' in mode and str(path).startswith(str(tmp_path / 'ro')):
      raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    return real_open(path, mode, *a, **kw)
  monkeypatch.setattr('builtins.open', read_only_open)
  with pytest.raises(WriteError, match=rf'cannot write {tmp_path / "ro"}: permission denied.*'
                                       r'pass another --workdir'):
    api.train(tiny_config(2), str(tmp_path / 'ro'))


def test_write_text_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
  path = tmp_path / 'run.json'
  files.write_text(str(path), 'old')
  monkeypatch.setattr(os, 'replace', raise_oserror(errno.ENOSPC))
  with pytest.raises(WriteError, match='no space left'):
    files.write_text(str(path), 'new')
  assert path.read_text() == 'old' and os.listdir(tmp_path) == ['run.json']


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('model') / 'model'
  save_bundle(tiny_bundle(), str(path))
  return path


def test_generate_out_that_cannot_be_written_is_one_line(model_dir, tmp_path):
  """launch/generate.py --out under a file (fails for root too): one line, exit 2."""
  (tmp_path / 'file').write_text('x')
  out = tmp_path / 'file' / 'samples.png'
  r = subprocess.run([sys.executable, 'launch/generate.py', f'--checkpoint={model_dir}',
                      f'--out={out}', '--num=2'], cwd=ROOT, capture_output=True, text=True,
                     timeout=300)
  assert_one_clear_line(r, f'{tmp_path / "file"} is a file, not a folder')
  assert not np.any([p.name.endswith('.tmp.png') for p in tmp_path.iterdir()])


def test_launcher_workdir_that_is_a_file_is_one_line(tmp_path):
  (tmp_path / 'run').write_text('x')
  assert_one_clear_line(
      run_launcher('--config=configs/offline.py:tgan,babies', f'--workdir={tmp_path / "run"}'),
      f'cannot write {tmp_path / "run"}: {tmp_path / "run"} is a file, not a folder')


def test_eval_out_that_cannot_be_written_fails_before_evaluating(model_dir, tmp_path):
  """launch/eval.py checks --out's folder before minutes of evaluation (the reference
  is never read: it does not exist, which would be the next error)."""
  (tmp_path / 'file').write_text('x')
  r = subprocess.run([sys.executable, 'launch/eval.py', f'--checkpoint={model_dir}',
                      f'--out={tmp_path / "file" / "metrics.json"}',
                      f'--reference={tmp_path / "no_reference"}'], cwd=ROOT,
                     capture_output=True, text=True, timeout=300)
  assert_one_clear_line(r, f'cannot write {tmp_path / "file"}: {tmp_path / "file"} is a file, '
                           'not a folder. Fix: pass another --out')


def test_write_image_folder_into_a_full_disk_is_one_line(tmp_path, monkeypatch):
  """launch/translate.py's writer (data.images.write_image_folder) names the folder."""
  from fsig_jax.data.images import write_image_folder  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(images.Image.Image, 'save', raise_oserror(errno.ENOSPC))
  with pytest.raises(WriteError, match=rf'cannot write {tmp_path / "out"}: no space left'):
    write_image_folder(tiny_images(2), tmp_path / 'out')


def test_every_launcher_turns_a_user_error_into_one_line():
  """Each launcher and absl benchmark starts through utils.cli.run_main, so an
  FsigError that escapes its main (e.g. a WriteError from a late write) is one
  line, never a traceback."""
  checked = 0
  for folder in ('launch', 'benchmarks'):
    for name in sorted(os.listdir(os.path.join(ROOT, folder))):
      if name.endswith('.py') and name != '__init__.py':
        text = open(os.path.join(ROOT, folder, name)).read()
        assert 'app.run(' not in text, (folder, name)
        if "__name__ == '__main__'" in text and (folder == 'launch' or 'flags.DEFINE' in text):
          assert 'run_main(main' in text, (folder, name)
          checked += 1
  assert checked >= 15, checked  # 19 when written: a renamed marker would skip them all


def test_run_main_prints_a_user_error_as_one_line(capsys):
  from fsig_jax.utils import cli  # pylint: disable=g-import-not-at-top

  def main(argv):
    del argv
    raise WriteError('cannot write x: why. Fix: this.')
  with pytest.raises(SystemExit) as e:
    cli.run_main(main, argv=['prog'])
  assert e.value.code == 2
  assert capsys.readouterr().err.strip() == 'fsig-jax: error: cannot write x: why. Fix: this.'


def test_make_targets_out_that_cannot_be_written_is_one_line(model_dir, tmp_path):
  (tmp_path / 'file').write_text('x')
  r = subprocess.run([sys.executable, 'launch/make_targets.py', f'--checkpoint={model_dir}',
                      f'--out={tmp_path / "file" / "sketches"}', '--num=2'], cwd=ROOT,
                     capture_output=True, text=True, timeout=300)
  assert_one_clear_line(r, f'{tmp_path / "file"} is a file, not a folder')


def test_feature_cache_and_method_reports_that_cannot_be_written(tmp_path, monkeypatch):
  """The evaluation's reference cache, a saved bundle, a projected latent and the methods'
  reports: one WriteError naming the path, no temporary file left behind."""
  from fsig_jax.inversion import projector  # pylint: disable=g-import-not-at-top
  from fsig_jax.metrics import fid  # pylint: disable=g-import-not-at-top
  (tmp_path / 'file').write_text('x')
  blocked = tmp_path / 'file'
  feats = np.random.RandomState(0).randn(8, 4).astype(np.float32)
  with pytest.raises(WriteError, match=f'{blocked} is a file, not a folder.*cache'):
    fid.cached_features(str(blocked / 'c.npz'), feature_name='f', cache_key='k',
                        compute_features=lambda: feats)
  with pytest.raises(WriteError, match=f'{blocked} is a file, not a folder'):
    fid.FeatureStats.from_features(feats, 'f').save(str(blocked / 's.npz'), 'k')
  with pytest.raises(WriteError, match=f'{blocked} is a file, not a folder'):
    save_bundle(tiny_bundle(), str(blocked / 'model'))
  with pytest.raises(WriteError, match=f'{blocked} is a file, not a folder'):
    projector.save_latent(str(blocked / 'w.npz'), np.zeros((2, 4)))
  monkeypatch.setattr(files.os, 'replace', raise_oserror(errno.ENOSPC))
  with pytest.raises(WriteError, match='no space left'):
    fid.cached_features(str(tmp_path / 'ok' / 'c.npz'), feature_name='f', cache_key='k',
                        compute_features=lambda: feats)
  assert os.listdir(tmp_path / 'ok') == []
