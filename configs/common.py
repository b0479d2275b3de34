"""Shared pieces of the experiment configs: paths, targets and method presets."""
import os

from fsig_jax.data import targets
from fsig_jax.engine.run_config import default_config
from fsig_jax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = targets.default_shared()  # ../shared beside the repo, or $FSIG_SHARED
TEN_SHOT = os.path.join(SHARED, 'data', 'ten_shot')
TARGETS = ('babies', 'sketches', 'caricatures', 'raphael', 'vangogh_face', 'vangogh_vil',
           'haunted_house')
# Derived targets with a real test set (fsig_jax/data/targets.py).
DERIVED = {'anime_sketch': 'derived:anime_sketch:train10'}
DERIVED_TEST = {'anime_sketch': 'derived:anime_sketch:test'}

# The offline source model: the anime-face StyleGAN2 the project trained and ships
# (models/anime64/MODEL_CARD.md), and the real images of its domain it was trained
# on (KD-FSIG's source discrimination uses them; never the test split, whose
# photos make the anime_sketch evaluation set).
ANIME64 = os.path.join(ROOT, 'models', 'anime64')
ANIME_TRAIN = os.path.join(SHARED, 'data', 'anime_faces_64', 'train')

# Aliases on top of the method registry; anything else is a '+'-joined list of
# registry names, composed in order (e.g. 'ewc+cdc').
# The cumulative rows of KD-FSIG's Table 3 after CDC, as kd_fsig settings
# (fsig_jax/methods/kd_fsig.py; 'full' is the method itself).
KD_ROWS = {
    'ssim_a': dict(momentum=False, queue_size=0, sdd_weight=0.0),     # +SSIM-A, in-batch keys
    'momentum': dict(momentum=True, queue_size=16, sdd_weight=0.0),   # +momentum relation
    'full': dict(momentum=True, queue_size=16),                       # +SDD
}
# The same two rows with the MoCo reading of Eq. 7 (methods/kd_fsig.py docstring): keys
# from the queue of earlier batches only, not the current batch through G_M, whose key
# of the sample itself pulls G_T toward the lagging EMA in the literal reading (default).
KD_ROWS.update({f'{row}_moco': dict(KD_ROWS[row], moco=True) for row in ('momentum', 'full')})

ALIASES = {
    # The papers' "TGAN+ADA" row (CDC, DCL, RICK, AdAM): CDC's train.py with --augment,
    # rosinality's non-leaking ADA with the adaptive p from 0 (--augment_p 0.0, target
    # 0.6, length 500k; fsig_jax/data/ada.py). The CDC README names the row tgan_ada
    # (utkarshojha/few-shot-gan-adaptation README.md:110).
    'tgan_ada': dict(names='tgan', augment='ada', augment_p=0.0),
    # TGAN + DiffAugment with its default policy (Zhao et al. 2020), at p = 1.
    'tgan_diffaug': dict(names='tgan', augment='color,translation,cutout'),
    # KD-FSIG's ablation rows (configs/kd_fsig.py has them for the paper setup too).
    'kd_ssim_a': dict(names='kd_fsig', kwargs={'kd_fsig': KD_ROWS['ssim_a']}),
    'kd_momentum': dict(names='kd_fsig', kwargs={'kd_fsig': KD_ROWS['momentum']}),
    'kd_momentum_moco': dict(names='kd_fsig', kwargs={'kd_fsig': KD_ROWS['momentum_moco']}),
    'kd_fsig_moco': dict(names='kd_fsig', kwargs={'kd_fsig': KD_ROWS['full_moco']}),
    # DCL's paper row: the official DCL model.py ships CDC's patch discriminator and
    # patch head (PatchGAN, Extra), so DCL runs on CDC's anchors + patch-level D with
    # DCL's contrastive terms instead of CDC's distance consistency (methods/dcl.py).
    'dcl_paper': dict(names='dcl,cdc', kwargs={'cdc': dict(kl_wt=0.0)}),
}

# Names no longer accepted -> the one-line reason with what to use instead.
RETIRED = {
    'tgan_aug': "method 'tgan_aug' is gone: it was TGAN + DiffAugment, now 'tgan_diffaug'; "
                "the papers' TGAN+ADA row (CDC's --augment, adaptive ADA) is 'tgan_ada'",
}

# Held-out references for ten-shot sets that have none of their own: other real
# images of the same kind, so the FID-VGG is approximate (another subset and crop).
APPROX_REFERENCES = {
    'sketches': (os.path.join(SHARED, 'data', 'cufs_pairs_64', 'sketch'),
                 'approximate: the 188 real CUFS sketches of ../shared/data/cufs_pairs_64, '
                 'another subset and crop of the same kind of data'),
}


def base(method: str):
  """A default config with `method` set."""
  if method in RETIRED:
    raise ConfigError(RETIRED[method])
  c = default_config()
  preset = ALIASES.get(method)
  if preset is not None:
    c.method.names = preset['names']
    c.hparams.augment = preset.get('augment', '')
    c.hparams.augment_p = preset.get('augment_p', c.hparams.augment_p)
    for name, kwargs in preset.get('kwargs', {}).items():
      c.method.kwargs[name] = dict(kwargs)
  else:
    c.method.names = method.replace('+', ',')
  return c


def split_arg(arg: str, fields: str):
  """'cdc,babies' -> ['cdc', 'babies'] for fields 'METHOD,TARGET', else a clear error."""
  parts = arg.split(',')
  if len(parts) != len(fields.split(',')):
    raise ConfigError(f'config argument must be {fields}, got {arg!r}')
  return parts


def rick_paper_setup(c, fisher_quantile: float, prune_quantile: float):
  """RICK's README settings on top of a paper config whose method includes rick.

  yunqing-me/RICK README: batch 2, num_fisher_img 5, fisher_freq 50,
  warmup_iter 250; the quantiles are per data set.
  """
  if 'rick' not in str(c.method.names).split(','):
    raise ConfigError(f'this config sets up RICK; its method must include rick (e.g. rick or '
                     f'ewc+rick), got {c.method.names!r}')
  c.hparams.batch_size = 2
  c.max_devices = 2  # the paper's batch of 2 unchanged on a host with more devices
  c.method.kwargs.rick = dict(fisher_quantile=fisher_quantile, prune_quantile=prune_quantile,
                              warmup_iter=250, fisher_freq=50, num_fisher_img=5)
  return c


def offline_eval(c, target: str):
  """Periodic evaluation of an offline run (fsig_jax.metrics.evaluate), every 500 steps.

  A derived target has a real test set: FID-VGG / KID-VGG against its 2,000
  held-out images plus intra-LPIPS around the 10 shots. 'sketches' is scored
  against APPROX_REFERENCES (188 real sketches of another subset: approximate).
  The other real ten-shot sets have none: intra-LPIPS, and FID-VGG against the
  10 training images (the metrics JSON says so in 'reference_kind'). 1000 samples as CDC's intra-LPIPS.
  """
  c.eval_every = 500
  c.eval.num_samples = 1000
  c.eval.reference = DERIVED_TEST.get(target, APPROX_REFERENCES.get(target, ('',))[0])
  c.eval.few_shot = 'auto'  # the training images
  return c


def paper_eval(c):
  """The papers' FID protocol for a user-supplied target set (configs/paper_*.py, and the
  rick_* / adam_* configs built on them).

  CDC (Ojha et al. 2021, Sec. 4) scores 5,000 generated images against the target
  set's images other than the 10 training shots, with the TF Inception-v3 of
  standard FID; RICK and AdAM follow it. Supply the folder and pytorch-fid's
  weights file to get that:
    --config.eval.reference=DIR   (the target's images other than the 10 shots)
    --config.eval.inception_weights=pt_inception-2015-12-05-6726825d.pth
  then `launch/eval.py --workdir=...` reads them from the run's config (or add
  --config.eval_every=N to score during training). Without them the scores fall
  back to FID-VGG against the 10 shots (labelled so). intra-LPIPS is computed
  around the shots on the same 5,000 samples (CDC uses 1,000: pass
  --num_samples=1000 to launch/eval.py for its number).
  """
  c.eval.num_samples = 5000
  c.eval.reference = ''
  c.eval.inception_weights = ''
  c.eval.few_shot = 'auto'
  return c


# ---------------------------------------------------------------- the GPD student
# Paired data of the translation students (fsig_jax/data/pairs.py).
PAIRS = {'anime_sketch': 'derived:anime_sketch',
         'cufs': os.path.join(SHARED, 'data', 'cufs_pairs_64')}
GPD_ROWS = ('bl', 'aug', 'aug_anchor', 'gpd', 'oracle')


def gpd(row: str, data: str, student: str = 'unet_mspade', pairs: int = 10):
  """A GPD student config (fsig_jax/distill/gpd.py) for benchmark row `row` on `data`.

  Rows (GPD Table 4): bl (real pairs only, one D), aug (teacher pairs only, one
  D), aug_anchor (1:2, one D), gpd (1:2, fine and coarse Ds), oracle (gpd with
  the XDoG operator as the teacher: anime_sketch only). The teacher is the
  shipped anime source adapted with CDC (1000 steps, configs/offline.py's
  schedule) to the training pairs' targets. Students: unet_mspade (LSGAN +
  perceptual, Eq. 2-6) or pix2pix (its 70x70 conditional PatchGAN, vanilla GAN
  + 100 L1, as pix2pix_model.py).
  """
  from fsig_jax.distill import gpd as gpd_lib  # pylint: disable=g-import-not-at-top
  if row not in GPD_ROWS:
    raise ConfigError(f'unknown GPD row {row!r}; choose from {GPD_ROWS}')
  if data not in PAIRS:
    raise ConfigError(f'unknown paired data {data!r}; choose from {sorted(PAIRS)}')
  if row == 'oracle' and data != 'anime_sketch':
    raise ConfigError('the oracle row needs the true operator (XDoG), known only for '
                      'anime_sketch')
  c = gpd_lib.default_config()
  c.teacher.source = ANIME64
  c.teacher.kind = 'xdog_oracle' if row == 'oracle' else 'adapted'
  c.teacher.adapt = base('cdc')
  c.teacher.adapt.steps = 1000
  c.teacher.adapt.sample_every = 0
  c.teacher.adapt.log_every = 100
  gpd_lib.apply_row(c, 'gpd' if row == 'oracle' else row)
  c.data.pairs = PAIRS[data]
  c.data.train_pairs = pairs
  c.student.arch = student
  if student == 'pix2pix':  # pix2pix_model.py: cGAN (vanilla) + lambda_L1 100
    c.gpd.conditional_d = True
    c.gpd.adv_loss = 'vanilla'
    c.gpd.l1 = 100.0
    c.gpd.mu = 0.0
  return c


def gpd_from_arg(arg: str, data: str):
  """`gpd(...)` from a config argument ROW[,STUDENT[,PAIRS]] (configs/gpd_*.py)."""
  parts = arg.split(',')
  if not 1 <= len(parts) <= 3 or not all(parts):
    raise ConfigError(f'bad argument {arg!r}: use ROW[,STUDENT[,PAIRS]], e.g. gpd,pix2pix,20')
  row, student, pairs = (parts + ['unet_mspade', '10'][len(parts) - 1:])[:3]
  if not pairs.isdigit():
    raise ConfigError(f'bad PAIRS {pairs!r} in {arg!r}: a number of training pairs')
  return gpd(row, data, student, int(pairs))


# ---------------------------------------------------------------- KDIT (StarGAN v2 students)
# The unpaired two-domain benchmark: 100 anime photos and 100 sketches of other faces
# (positions i * 314 and i * 314 + 157 of the train split; fsig_jax/data/targets.py).
KDIT_DOMAINS = 'derived:anime_photo:train100,derived:anime_sketch:train100+157'
KDIT_TEST = ('derived:anime_photo:test', 'derived:anime_sketch:test')
KDIT_ABLATIONS = {'full': {}, 'kd_star': {'triplets': False}, 'l1_only': {'lambda_adv': 0.0},
                  'adv_only': {'lambda_kdl': 0.0}}
