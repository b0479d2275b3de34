"""Every experiment config builds, names resolvable methods and data, and runs."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, shared_path
from fsig_jax import run
from fsig_jax.engine import run_config
from fsig_jax.methods import REGISTRY, get_method

sys.path.insert(0, str(ROOT))
from configs import common, offline, paper_afhq, paper_ffhq256, rick_afhq_cat, rick_babies  # noqa: E402  pylint: disable=g-import-not-at-top

METHODS = sorted(REGISTRY) + sorted(common.ALIASES) + ['ewc+cdc', 'ewc+rick']


@pytest.mark.parametrize('method', METHODS)
def test_offline_configs_build_for_every_target(method):
  for target in common.TARGETS + tuple(common.DERIVED):
    c = offline.get_config(f'{method},{target}')
    get_method(run_config.method_names(c), **run_config.method_kwargs(c))
    if target in common.TARGETS:
      assert c.data.source.endswith(os.path.join('ten_shot', target))
    assert c.model.checkpoint == common.ANIME64


@pytest.mark.parametrize('module,arg', [(paper_ffhq256, 'cdc,babies'), (paper_ffhq256, 'dcl,sketches'),
                                        (paper_afhq, 'tgan,cat'), (paper_afhq, 'freezed,wild')])
def test_paper_configs_name_what_users_provide(module, arg):
  c = module.get_config(arg)
  assert c.model.resolution == 256 and c.model.description and c.data.description
  get_method(run_config.method_names(c), **run_config.method_kwargs(c))


@pytest.mark.parametrize('module,arg,steps,fq,pq', [
    (rick_afhq_cat, '', 2250, 85.0, 0.075), (rick_afhq_cat, 'ewc+rick', 2250, 85.0, 0.075),
    (rick_babies, 'rick', 1750, 40.0, 0.1), (rick_afhq_cat, 'adam+rick', 2250, 85.0, 0.075)])
def test_rick_paper_configs(module, arg, steps, fq, pq):
  c = module.get_config(arg)
  assert c.steps == steps and c.hparams.batch_size == 2 and c.model.resolution == 256
  kw = run_config.method_kwargs(c)['rick']
  assert (kw['fisher_quantile'], kw['prune_quantile'], kw['warmup_iter'], kw['fisher_freq'],
          kw['num_fisher_img']) == (fq, pq, 250, 50, 5)
  get_method(run_config.method_names(c), **run_config.method_kwargs(c))
  if 'adam' in arg:
    assert run_config.method_kwargs(c)['adam']['fisher_quantile'] == 75.0
  with pytest.raises(ValueError, match='must include rick'):
    module.get_config('cdc')


@pytest.mark.slow
def test_rick_headline_config_runs_from_the_cli(tmp_path):
  """configs/rick_afhq_cat.py end to end on a 16 px random model and a real 10-shot set
  (AFHQ-Cat and the FFHQ source are user-supplied), warm-up and Fisher shortened: the
  launcher's whole path (config file, flag overrides, progress, samples, export)."""
  data = shared_path('data', 'ten_shot', 'babies')
  wd = tmp_path / 'run'
  r = subprocess.run(
      [sys.executable, 'launch/main.py', '--config=configs/rick_afhq_cat.py',
       '--config.model.checkpoint=random:16', '--config.model.resolution=16',
       f'--config.data.source={data}', '--config.steps=3', '--config.sample_every=3',
       '--config.method.kwargs.rick.warmup_iter=1', '--config.method.kwargs.rick.fisher_freq=1',
       '--config.method.kwargs.rick.num_fisher_img=1', '--config.hparams.d_reg_every=2',
       '--config.hparams.g_reg_every=2', f'--workdir={wd}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'step 3/3' in r.stderr and 'ETA' in r.stderr
  assert (wd / 'rick_filters.png').exists() and (wd / 'model').is_dir()
  assert (wd / 'samples' / 'step_000003.png').exists()
  assert json.loads((wd / 'run.json').read_text())['steps'] == 3
  assert json.loads((wd / 'rick_filters.json').read_text())['steps'] == [1, 2, 3]


def test_tgan_diffaug_sets_diffaugment_and_tgan_ada_sets_ada():
  c = offline.get_config('tgan_diffaug,babies')
  assert c.method.names == 'tgan' and c.hparams.augment == 'color,translation,cutout'
  c = offline.get_config('tgan_ada,babies')
  assert c.method.names == 'tgan' and (c.hparams.augment, c.hparams.augment_p) == ('ada', 0.0)




def test_pretraining_configs_name_buildable_architectures():
  """Each pretraining config builds its architecture, and the small ProGAN's shortened
  schedule has grown to its full resolution, fade finished, before its last step."""
  from configs import pretrain_anime64, pretrain_progan32, pretrain_progan64  # noqa: E501  pylint: disable=g-import-not-at-top
  from fsig_jax.engine.progressive import stage  # pylint: disable=g-import-not-at-top
  from fsig_jax.models import presets  # pylint: disable=g-import-not-at-top
  for module, res in ((pretrain_anime64, 64), (pretrain_progan64, 64), (pretrain_progan32, 32)):
    c = module.get_config()
    assert presets.parse_random_spec(c.model.checkpoint).resolution == res
    if 'progressive' in c:
      pg, n = c.progressive, c.hparams.batch_size
      grown = stage(c.steps * n, res, pg.train_kimg, pg.transition_kimg)
      assert grown == (res, 1.0), (module.__name__, grown)


def test_pretrain_anime64_batch_argument_rescales_by_ada_rules():
  """configs/pretrain_anime64.py:batch=N: R1 gamma 0.0002 res^2 / N and EMA half-life 10k
  images, as stylegan2-ada's 'auto' config; anything else is a clear error."""
  from configs import pretrain_anime64  # pylint: disable=g-import-not-at-top
  c16, c32 = pretrain_anime64.get_config(), pretrain_anime64.get_config('batch=32')
  assert (c16.hparams.batch_size, c32.hparams.batch_size) == (16, 32)
  assert c16.hparams.r1_gamma == pytest.approx(0.0512)
  assert c32.hparams.r1_gamma == pytest.approx(0.0256)
  assert c32.hparams.ema_beta ** (10_000 / 32) == pytest.approx(0.5)
  for bad in ('32', 'batch=0', 'lr=1'):
    with pytest.raises(ValueError, match='the only argument is batch=N'):
      pretrain_anime64.get_config(bad)


def test_config_trainer_picks_the_trainer():
  """`config.trainer` names the trainer in fsig_jax.api.TRAINERS: the ProGAN pretraining
  configs 'progressive', every other config 'adapt' (the default)."""
  from configs import pretrain_anime64, pretrain_progan32, pretrain_progan64, quickstart  # noqa: E501  pylint: disable=g-import-not-at-top
  from fsig_jax import api  # pylint: disable=g-import-not-at-top
  from fsig_jax.engine import loop, progressive  # pylint: disable=g-import-not-at-top
  assert api.trainer('adapt') is loop.train
  assert api.trainer('progressive') is progressive.pretrain
  assert pretrain_progan64.get_config().trainer == 'progressive'
  assert pretrain_progan32.get_config().trainer == 'progressive'
  for c in (pretrain_anime64.get_config(), quickstart.get_config(),
            offline.get_config('cdc,babies'), rick_afhq_cat.get_config('')):
    assert c.trainer == 'adapt'
  c = offline.get_config('tgan,babies')
  c.trainer = 'distill'
  with pytest.raises(run_config.ConfigError, match=r"'distill' names no trainer.*'progressive'"):
    api.train(c, None)


def test_runs_saved_before_the_trainer_field_resume():
  """A run.json written before `trainer` existed resumes with the trainer it ran
  ('progressive' when it has config.progressive); another trainer is refused."""
  from configs import pretrain_progan64  # pylint: disable=g-import-not-at-top
  for c in (pretrain_progan64.get_config(), offline.get_config('tgan,babies')):
    saved = json.loads(c.to_json_best_effort())
    del saved['trainer']
    run.check_resumable(json.dumps(saved), c, 'wd', run_config.default_config())
  c.trainer = 'progressive'
  with pytest.raises(run_config.ConfigError, match=r"trainer: 'adapt' -> 'progressive'"):
    run.check_resumable(json.dumps(saved), c, 'wd', run_config.default_config())
