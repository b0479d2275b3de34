"""Pretrain a small ProGAN on the 31,431 anime faces at 64 px (RICK's second architecture).

  python launch/main.py --config=configs/pretrain_progan64.py --workdir=runs/pretrain_progan64

Progressive growing with WGAN-GP as in ProGAN (fsig_jax/engine/progressive.py);
re-run the same command to resume. The exported `model/` is the offline ProGAN
source for `configs/offline.py` runs with --config.model.checkpoint=.../model.

Official schedule and optimiser (train.py, config.py): 600k images per
stabilise and per fade phase, Adam 0.001 (0, 0.99), WGAN-GP lambda 10, drift
0.001, G EMA 0.999. Deviations for 2 CPU cores: widths from
fsig_jax.models.presets.progan64 and phases of 60k images (10x shorter);
one batch size (16) at every resolution.
"""

from configs import common
from fsig_jax.engine.progressive import progressive_config


def get_config():
  c = common.base('tgan')
  c.trainer = 'progressive'  # fsig_jax.engine.progressive.pretrain (fsig_jax.api.TRAINERS)
  c.model.checkpoint = 'random:progan64'
  c.data.source = common.ANIME_TRAIN
  c.data.description = 'the anime faces in ../shared/data/anime_faces_64/train'
  c.data.flip = True
  c.hparams.batch_size = 16
  c.progressive = progressive_config()
  c.progressive.train_kimg = 60.0
  c.progressive.transition_kimg = 60.0
  c.steps = 40_000  # 640k images: 4 fades + stabilisations to 64 px, then 64 px
  c.log_every = 50
  c.checkpoint_every = 500
  c.keep_checkpoints = 2
  c.sample_every = 1000
  c.num_samples = 16
  return c
