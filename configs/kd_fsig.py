"""KD-FSIG (knowledge distillation for FSIG) and the rows of its ablation.

  python launch/main.py --config=configs/kd_fsig.py:offline,full,anime_sketch --workdir=runs/kd
  python launch/main.py --config=configs/kd_fsig.py:paper,full,sketches \
      --config.model.checkpoint=550000.pt --config.data.source=data/sketches \
      --config.method.kwargs.kd_fsig.source_images=data/ffhq --workdir=runs/kd_paper

The argument is SETUP,ROW,TARGET.
  SETUP: 'offline' (the shipped anime-face source, configs/offline.py's
    targets; SDD's real source images are the anime training split,
    ../shared/data/anime_faces_64/train, never its test split) or 'paper'
    (FFHQ 256 -> sketches / babies / sunglasses as configs/paper_ffhq256.py;
    SDD's real source images are your FFHQ folder, default data/ffhq).
  ROW: the cumulative rows of the paper's Table 3, 'cdc' (CDC itself),
    'ssim_a' (+SSIM-A, in-batch keys), 'momentum' (+momentum relation with the
    queue of 16), 'full' (+SDD: the method); and the queue sweep of Table 4,
    'queue4', 'queue8', 'queue12', 'queue16' (with SDD). 'momentum_moco' and
    'full_moco': the momentum and full rows with the MoCo reading of Eq. 7
    (`moco=True`: keys from the queue of earlier batches only; the default,
    literal reading also keys on the current batch through G_M, the sample
    itself included: fsig_jax/methods/kd_fsig.py).
The relation weight alpha = 1e4 and SDD's beta = 0.1 (kd_fsig's defaults);
batch 4 and everything else as CDC (configs/common.py).
"""
from configs import common, offline, paper_ffhq256
from fsig_jax.errors import ConfigError

ROWS = {
    'cdc': None,
    **common.KD_ROWS,
    **{f'queue{n}': dict(momentum=True, queue_size=n) for n in (4, 8, 12, 16)},
}
PAPER_TARGETS = ('sketches', 'babies', 'sunglasses')


def get_config(arg: str = 'offline,full,anime_sketch'):
  setup, row, target = common.split_arg(arg, 'SETUP,ROW,TARGET')
  if row not in ROWS:
    raise ConfigError(f'unknown KD-FSIG row {row!r}; choose from {sorted(ROWS)}')
  method = 'cdc' if ROWS[row] is None else 'kd_fsig'
  if setup == 'offline':
    c = offline.get_config(f'{method},{target}')
    source_images = common.ANIME_TRAIN
  elif setup == 'paper':
    if target not in PAPER_TARGETS:
      raise ConfigError(f'the KD-FSIG paper targets are {PAPER_TARGETS}, got {target!r}')
    # The CDC row at train.py's argparse defaults, as the KD rows (no --augment), and
    # every row at the CDC README's iterations for the target.
    c = paper_ffhq256.get_config(f'{"cdc_argparse" if method == "cdc" else method},{target}')
    c.steps = paper_ffhq256.steps_for(target)
    source_images = 'data/ffhq'
  else:
    raise ConfigError(f"SETUP must be 'offline' or 'paper', got {setup!r}")
  if ROWS[row] is not None:
    kw = dict(ROWS[row])
    if kw.get('sdd_weight', 0.1) > 0:
      kw['source_images'] = source_images
    c.method.kwargs.kd_fsig = kw
  c.hparams.batch_size = 4
  return c
