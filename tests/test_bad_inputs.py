"""A table of bad inputs (folders, images, configs, checkpoints, flags), each
answered with a clear error that names the problem and the fix."""
import re
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, shared_path
from engine_utils import tiny_bundle
import torch_writer
from fsig_jax.convert.errors import CheckpointError
from fsig_jax.convert.torch_file import load_torch_file
from fsig_jax.data.images import DataError
from fsig_jax.engine import loop, parallel, run_config
from fsig_jax.models.bundle import MissingNetworkError


def write_pngs(folder, n, size=32):
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  for i in range(n):
    Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(folder / f'{i}.png')
  return folder


def config(**kw):
  c = run_config.default_config()
  for k, v in kw.items():
    node = c
    *parents, leaf = k.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = v
  return c


def case_missing_folder(tmp):
  return config(**{'data.source': str(tmp / 'nope')}), DataError, r'nope.*(not exist|no such)'


def case_empty_folder(tmp):
  (tmp / 'empty').mkdir()
  return config(**{'data.source': str(tmp / 'empty')}), DataError, r'empty.*(no image|empty)'


def case_corrupt_image(tmp):
  folder = write_pngs(tmp / 'imgs', 3)
  (folder / 'bad.png').write_bytes(b'not a png at all')
  return config(**{'data.source': str(folder)}), DataError, r'bad\.png'


def case_too_few_images(tmp):
  folder = write_pngs(tmp / 'imgs', 2)
  return (config(**{'data.source': str(folder), 'data.min_images': 5}), DataError,
          r'2 .*5|5.*2')


def case_unknown_method(tmp):
  folder = write_pngs(tmp / 'imgs', 4, 16)
  return (config(**{'data.source': str(folder), 'method.names': 'cdcc'}),
          run_config.ConfigError, r"unknown method\(s\) \['cdcc'\]; available")


def case_method_kwarg_typo(tmp):
  folder = write_pngs(tmp / 'imgs', 4, 16)
  c = config(**{'data.source': str(folder), 'method.names': 'freezed'})
  c.method.kwargs.freezed = {'freez_layers': 2}
  return c, run_config.ConfigError, r"config.method: .*freez_layers"


def case_method_setting_the_model_cannot_take(tmp):
  folder = write_pngs(tmp / 'imgs', 4, 16)
  c = config(**{'data.source': str(folder), 'method.names': 'cdc'})
  c.method.kwargs.cdc = {'highp': 9}
  return c, run_config.ConfigError, r"highp must be in \[1, \d\] for a 16px D.*kwargs.cdc.highp"


def case_missing_checkpoint(tmp):
  return (config(**{'model.checkpoint': str(tmp / 'ffhq.pt'),
                    'model.description': 'the FFHQ 256px source model'}),
          run_config.ConfigError, r'does not exist\. This config needs the FFHQ 256px.*convert')


def case_empty_checkpoint_setting(tmp):
  return config(), run_config.ConfigError, r'config.model.checkpoint is empty'


def case_not_a_checkpoint(tmp):
  png = write_pngs(tmp / 'imgs', 1) / '0.png'
  return (config(**{'model.checkpoint': str(png)}), CheckpointError,
          r'0\.png: unknown checkpoint format')


def case_wrong_resolution(tmp):
  pkl = shared_path('conformance', 'ada_32px.pkl')
  return (config(**{'model.checkpoint': str(pkl), 'model.resolution': 256}), CheckpointError,
          r'32x32, but 256x256')


def case_checkpoint_without_d(tmp):
  ckpt = load_torch_file(str(shared_path('conformance', 'rosinality_32px.pt')))
  path = tmp / 'g_only.pt'
  torch_writer.save({'g_ema': ckpt['g_ema']}, path)
  return config(**{'model.checkpoint': str(path)}), MissingNetworkError, r'has no D network'


CASES = [case_missing_folder, case_empty_folder, case_corrupt_image, case_too_few_images,
         case_unknown_method, case_method_kwarg_typo, case_method_setting_the_model_cannot_take,
         case_missing_checkpoint,
         case_empty_checkpoint_setting, case_not_a_checkpoint, case_wrong_resolution,
         case_checkpoint_without_d]


@pytest.mark.parametrize('case', CASES, ids=lambda c: c.__name__[5:])
def test_bad_input_gets_a_clear_error(case, tmp_path):
  cfg, error, pattern = case(tmp_path)
  uses_model = 'checkpoint' in case.__name__ or 'resolution' in case.__name__
  bundle = None if uses_model else tiny_bundle()
  with pytest.raises(error, match=pattern):
    loop.train(cfg, None, bundle=bundle)


def trainer_defaults(name):
  """The default config of trainer `name` (adapt and progressive share run_config's)."""
  import importlib  # pylint: disable=g-import-not-at-top
  from fsig_jax import api  # pylint: disable=g-import-not-at-top
  module = importlib.import_module(api.TRAINERS[name].split(':')[0])
  c = getattr(module, 'default_config', run_config.default_config)()
  c.trainer = name
  return c


BAD_NUMBERS = [('steps', -5, 'a step count >= 0 (the run length)'),
               ('hparams.batch_size', 0, 'positive'),
               ('hparams.lr', -0.001, 'positive'), ('hparams.lr', 0.0, 'positive'),
               ('log_every', 0, 'positive'), ('checkpoint_every', -1, 'positive'),
               ('seed', -1, 'a seed >= 0'), ('keep_checkpoints', 0, 'at least 1'),
               ('hparams.beta2', 1.0, 'in [0, 1)'), ('hparams.lr', float('nan'), 'positive')]


@pytest.mark.parametrize('name', ['adapt', 'progressive', 'gpd', 'kdit', 'stargan_v2',
                                  'kdit_spade'])
def test_invalid_numbers_are_refused_for_every_trainer(name):
  """run.check_config (called by api.train and every Run) names the field, the bad value,
  what is valid and the override, for every trainer's config, nested ones included."""
  from fsig_jax import run  # pylint: disable=g-import-not-at-top
  run.check_config(trainer_defaults(name))  # the defaults pass
  for field, value, valid in BAD_NUMBERS:
    c = trainer_defaults(name)
    node = c
    *parents, leaf = field.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
    with pytest.raises(run_config.ConfigError,
                       match=re.escape(f'config.{field} = {value!r} is invalid: it must be '
                                       f'{valid}') + r'.*; pass ' +
                       re.escape(f'--config.{field}=VALUE')):
      run.check_config(c)
  if name == 'gpd':  # a nested adaptation config (the teacher's) is checked too
    c = trainer_defaults(name)
    c.teacher.adapt.hparams.batch_size = -2
    with pytest.raises(run_config.ConfigError, match=r'config.teacher.adapt.hparams.batch_size'):
      run.check_config(c)


def test_shipped_configs_pass_the_number_check():
  import sys as _sys  # pylint: disable=g-import-not-at-top
  from fsig_jax import run  # pylint: disable=g-import-not-at-top
  _sys.path.insert(0, str(ROOT))
  from fsig_jax.utils.cli import load_config_file  # pylint: disable=g-import-not-at-top
  specs = ['configs/quickstart.py', 'configs/offline.py:cdc,babies', 'configs/pretrain_anime64.py',
           'configs/offline.py:tgan_ada,babies', 'configs/paper_ffhq256.py:cdc,babies',
           'configs/pretrain_progan32.py', 'configs/gpd_anime_sketch.py:gpd',
           'configs/kdit_anime.py:distill', 'configs/rick_afhq_cat.py']
  for spec in specs:
    run.check_config(load_config_file(str(ROOT / spec.split(':')[0]) +
                                       (':' + spec.split(':')[1] if ':' in spec else '')))


def test_ci_fails_without_the_shared_data(tmp_path):
  """.ci/run stops before installing anything when the test data folder is missing
  (the tests would skip and CI would pass having tested little)."""
  import shutil  # pylint: disable=g-import-not-at-top
  repo = tmp_path / 'repo'
  shutil.copytree(ROOT / '.ci', repo / '.ci')
  env = {'PATH': '/usr/bin:/bin', 'FSIG_SHARED': str(tmp_path / 'no_shared')}
  r = subprocess.run(['bash', str(repo / '.ci' / 'run')], capture_output=True, text=True,
                     env=env, timeout=60)
  assert r.returncode == 2, r.stderr
  assert f'the test data folder {tmp_path / "no_shared"} does not exist' in r.stderr
  assert not (repo / '.venv').exists()  # stopped before creating the venv


def test_batch_not_divisible_by_devices():
  mesh = types.SimpleNamespace(devices=np.zeros(8))
  with pytest.raises(run_config.ConfigError, match=r'batch_size 4 is not divisible by the 8'):
    parallel.check_batch(4, mesh)


CLI = [
    (['--config=configs/offline.py:tgan,babies', '--config.hparams.lrr=1'],
     "config.hparams has no field 'lrr'; did you mean --config.hparams.lr?"),
    (['--config=configs/offline.py:cdc'],
     'could not load --config=configs/offline.py:cdc (configs/common.py, line '),
    (['--config=configs/offline.py:cdc'], '): config argument must be METHOD,TARGET'),
    (['--config=configs/offline.py:cdc,bbies'], "unknown target 'bbies'"),
    (['--config=configs/offline.py:tgan_aug,babies'],
     "method 'tgan_aug' is gone: it was TGAN + DiffAugment, now 'tgan_diffaug'; the papers' "
     "TGAN+ADA row (CDC's --augment, adaptive ADA) is 'tgan_ada'"),
    (['--config=configs/nope.py'], "No such file or directory: 'configs/nope.py"),
    (['--config=configs/ofline.py'], 'did you mean configs/offline.py?'),
    (['--config=configs/offline.py:tgan,babies', '--config.steps=abc'],
     "--config.steps=abc: config.steps takes an integer (it is 1000 now), not 'abc'"),
    (['--config=configs/quickstart.py', '--config.data=3'],
     '--config.data=3: config.data is a group of settings, not a value; set one of its fields'),
    (['--config=configs/quickstart.py:x'],
     "configs/quickstart.py takes no argument (got 'x'); use --config=configs/quickstart.py"),
    (['--config=configs/paper_ffhq256.py:cdc,babies'],
     "config.model.checkpoint 'checkpoints/ffhq256.pt' does not exist"),
    (['--config=configs/offline.py:tgan,babies', '--config.trainer=distill'],
     "config.trainer 'distill' names no trainer; set it to one of ['adapt', 'gpd', 'kdit', "
     "'kdit_spade', 'progressive', 'stargan_v2']"),
    # The student trainers: the setting and the fix, before anything is trained.
    (['--config=configs/gpd_anime_sketch.py:gpd', '--config.teacher.source=/nowhere/g.pt'],
     "teacher.source '/nowhere/g.pt' does not exist"),
    (['--config=configs/kdit_anime.py:stage2'], 'pass --config.init=STAGE1_WORKDIR'),
    (['--config=configs/kdit_spade.py:distill,audio'], "bad argument 'distill,audio'"),
    (['--config=configs/kdit_anime.py:distill', '--config.teacher.checkpoint=random:7'],
     'teacher.checkpoint: bad model spec'),
    # Numbers that would run silently or fail deep inside: refused before anything runs.
    (['--config=configs/offline.py:tgan,babies', '--config.steps=-5'],
     'config.steps = -5 is invalid: it must be a step count >= 0 (the run length); pass '
     '--config.steps=VALUE'),
    (['--config=configs/pretrain_progan32.py', '--config.hparams.batch_size=0'],
     'config.hparams.batch_size = 0 is invalid: it must be positive'),
]


def run_launcher(*args):
  return subprocess.run([sys.executable, 'launch/main.py', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def assert_one_clear_line(r, message):
  """Exit code 2, `fsig-jax: error: ...message...` on one line, no traceback or raw
  ml_collections wording (its module name config_config, escaped quotes)."""
  assert r.returncode == 2, r.stderr[-2000:]
  assert 'Traceback' not in r.stderr, r.stderr[-3000:]
  line = [l for l in r.stderr.splitlines() if l.startswith('fsig-jax: error:')]
  assert len(line) == 1 and message in line[0], r.stderr[-2000:]
  assert 'config_config' not in r.stderr and "\\'" not in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize('args,message', CLI, ids=[a[-1].split('=')[-1] for a, _ in CLI])
def test_launcher_reports_one_clear_line(args, message, tmp_path):
  assert_one_clear_line(run_launcher(*args, f'--workdir={tmp_path / "w"}'), message)


def test_config_file_errors_name_the_file_and_line(tmp_path):
  """An error inside a user's config file: its type, message, file and line, from the
  exception object (not from traceback text)."""
  config = tmp_path / 'mine.py'
  config.write_text('def get_config(arg=""):\n  c = dict()\n  return c.missing_field\n')
  assert_one_clear_line(
      run_launcher(f'--config={config}', f'--workdir={tmp_path / "w"}'),
      f"could not load --config={config} ({config}, line 3): "
      "AttributeError: 'dict' object has no attribute 'missing_field'")


def test_launcher_names_only_configs_that_exist():
  """launch/main.py's docstring (its --help) and flag help name real config files."""
  text = (ROOT / 'launch' / 'main.py').read_text()
  named = set(re.findall(r'configs/[\w/]+\.py', text))
  assert {'configs/quickstart.py', 'configs/offline.py'} <= named
  assert not [p for p in named if not (ROOT / p).is_file()], named


def test_launcher_requires_workdir():
  r = subprocess.run([sys.executable, 'launch/main.py', '--config=configs/offline.py:tgan,babies'],
                     cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert r.returncode == 2 and 'Flag --workdir must have a value' in r.stderr
  assert 'Traceback' not in r.stderr
