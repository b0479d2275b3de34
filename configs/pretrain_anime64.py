"""Pretrain the offline source StyleGAN2 on 31,431 real anime faces at 64 px.

  python launch/main.py --config=configs/pretrain_anime64.py --workdir=runs/pretrain_anime64

Re-run the same command to resume (checkpoints every 500 steps). Every 5000
steps FID-VGG / KID-VGG against the 2,000 test faces are logged and appended to
WORKDIR/eval/metrics.jsonl; `python launch/eval.py --workdir=...` evaluates any
checkpoint, also while the run trains. `python launch/release_model.py
--workdir=... --out=models/anime64` turns the run into the shipped model and
writes its MODEL_CARD.md.

Hyper-parameters follow stylegan2-ada-pytorch train.py's 'auto' config for
64 px, where it applies: lr 0.0025, R1 gamma = 0.0002 * res^2 / batch,
2 mapping layers, EMA half-life 10 kimg, style mixing 0.9, path length 2, and
horizontal flips (--mirror). Deviations: batch 16 (not 32) to keep a CPU step
short, widths from fsig_jax.models.presets.anime64, no EMA ramp-up.

`configs/pretrain_anime64.py:batch=32` trains at another batch size with the
batch-dependent settings rescaled by ada's rules (R1 gamma, EMA beta); 32 is
ada's 'auto' batch for one GPU at 64 px. Continue from the shipped model with
`--config.model.checkpoint=models/anime64` (G starts from its G_ema, D from its D,
the optimiser from scratch).
"""
import os

from configs import common


def _batch(arg: str) -> int:
  if not arg:
    return 16
  key, _, value = arg.partition('=')
  if key != 'batch' or not value.isdigit() or int(value) < 1:
    raise ValueError(f'configs/pretrain_anime64.py:{arg}: the only argument is batch=N '
                     '(e.g. configs/pretrain_anime64.py:batch=32)')
  return int(value)


def get_config(arg: str = ''):
  c = common.base('tgan')  # plain StyleGAN2 losses: the engine's default step
  c.model.checkpoint = 'random:anime64'
  c.data.source = common.ANIME_TRAIN
  c.data.description = 'the anime faces in ../shared/data/anime_faces_64/train'
  c.data.flip = True
  hp = c.hparams
  hp.batch_size = _batch(arg)
  hp.lr = 0.0025                                # ada 'auto': 0.0025 below 1024 px
  hp.r1_gamma = 0.0002 * 64 ** 2 / hp.batch_size  # ada 'auto' gamma rule = 0.0512
  hp.ema_beta = 0.5 ** (hp.batch_size / 10_000)   # ada: ema_kimg = 10 (mb * 10 / 32 at mb 32)
  c.steps = 200_000
  c.log_every = 50
  c.checkpoint_every = 500
  c.keep_checkpoints = 2
  c.sample_every = 1000
  c.num_samples = 16
  # FID-VGG / KID-VGG of 2,000 samples against the 2,000 held-out test faces.
  c.eval_every = 5000
  c.eval.reference = os.path.join(common.SHARED, 'data', 'anime_faces_64', 'test')
  c.eval.few_shot = ''  # not a few-shot run: no intra-LPIPS
  c.eval.num_samples = 2000
  c.eval.metrics = 'fid_vgg,kid_vgg'
  return c
