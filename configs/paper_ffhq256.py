"""The CDC / DCL / RICK paper setting: FFHQ 256 px source -> a 10-shot target.

  python launch/main.py --config=configs/paper_ffhq256.py:cdc,babies \
      --config.model.checkpoint=550000.pt --config.data.source=data/babies --workdir=runs/x

Users provide the source checkpoint (rosinality's FFHQ 256 `550000.pt`, as
used by CDC, or any FFHQ 256 .pt/.pkl) and the 10 target images (the CDC
10-shot sets: babies, sunglasses, sketches, ...). Paths default to
checkpoints/ffhq256.pt and data/<target>; a missing one is reported with how
to get it. CDC trains 5000 iterations with batch 4 (its README, --iter 5002).

Paper-comparable FID / KID (5,000 samples against the target's images other
than the 10 shots, on pytorch-fid's Inception): add
--config.eval.reference=DIR --config.eval.inception_weights=PTH (common.paper_eval).

'dcl' here is DCL's paper row, the alias 'dcl_paper' of configs/common.py
(dcl composed with CDC's anchors and patch-level D, cdc kl_wt=0), because the
official DCL model.py ships CDC's patch discriminator (fsig_jax/methods/dcl.py,
"Paper configuration"); 'dcl+tgan' gives DCL alone.
"""
from configs import common


# Methods whose paper row is a composition (configs/common.py ALIASES).
PAPER_ROWS = {'dcl': 'dcl_paper'}


def get_config(arg: str = 'cdc,babies'):
  method, target = common.split_arg(arg, 'METHOD,TARGET')
  c = common.base(PAPER_ROWS.get(method, method))
  c.model.checkpoint = 'checkpoints/ffhq256.pt'
  c.model.resolution = 256
  c.model.description = ('the FFHQ 256px StyleGAN2 source model (rosinality 550000.pt from '
                         'the CDC README, or an FFHQ-256 stylegan2-ada .pkl)')
  c.data.source = f'data/{target}'
  c.data.description = (f'the 10-shot "{target}" images from the CDC repository '
                        '(few-shot-gan-adaptation, "processed_data" / the 10-shot folders)')
  c.steps = 5000
  c.checkpoint_every = 500
  c.sample_every = 500
  return common.paper_eval(c)
