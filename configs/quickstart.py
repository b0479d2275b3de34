"""The README's main command: adapt the shipped anime-face model to 10 sketches.

  python launch/main.py --config=configs/quickstart.py --workdir=runs/quickstart
  python launch/main.py --config=configs/quickstart.py --workdir=runs/mine \
      --config.data.source=path/to/your/images      # your own 10 (or more) images

Source: the StyleGAN2 the project trained on 31,431 anime faces and ships in
models/anime64 (see its MODEL_CARD.md). Target: data/anime64_sketch10, XDoG
pencil sketches of 10 of that model's own samples, made by
`python launch/make_targets.py` (see PROVENANCE.txt there). Method: CDC, the
cross-domain correspondence method; the run writes samples/ (top: source,
bottom: adapted, same latents), eval/metrics.jsonl (FID-VGG against the 10
shots and intra-LPIPS over 1000 samples), checkpoints/ and model/.
"""
import os

from configs import common

TARGET = os.path.join(common.ROOT, 'data', 'anime64_sketch10')


def get_config():
  c = common.base('cdc')
  c.model.checkpoint = common.ANIME64
  c.model.description = ('the shipped anime-face model models/anime64 (train it with '
                         'configs/pretrain_anime64.py if your checkout lacks it)')
  c.data.source = TARGET
  c.data.description = '10 target images (data/anime64_sketch10 in the repository)'
  c.steps = 400
  c.log_every = 20
  c.checkpoint_every = 100
  c.sample_every = 200
  c.num_samples = 8
  c.eval_every = 10 ** 9  # only the last step, which is always evaluated (any --config.steps)
  c.eval.reference = ''  # no held-out set for user folders: FID-VGG vs the 10 shots
  c.eval.num_samples = 1000
  return c
