"""The CDC / DCL / RICK paper setting: FFHQ 256 px source -> a 10-shot target.

  python launch/main.py --config=configs/paper_ffhq256.py:cdc,babies \
      --config.model.checkpoint=550000.pt --config.data.source=data/babies --workdir=runs/x

Users provide the source checkpoint (rosinality's FFHQ 256 `550000.pt`, as
used by CDC, or any FFHQ 256 .pt/.pkl) and the 10 target images (the CDC
10-shot sets: babies, sunglasses, sketches, ...). Paths default to
checkpoints/ffhq256.pt and data/<target>; a missing one is reported with how
to get it.

'cdc' is the authors' committed command, utkarshojha/few-shot-gan-adaptation
(snapshot 5617920) run.sh:18: `train.py --batch 4 --augment --n_train 10
--highp 1 --subspace_freq 2 --iter 5002` (its --img_freq / --save_freq only set
the output cadence): CDC with rosinality's adaptive ADA (augment_p 0, target
0.6, length 500k: train.py:482-484; fsig_jax/data/ada.py) and anchor steps
every 2nd iteration. 'cdc_argparse' is train.py's argparse defaults instead
(:453-484: no --augment, --subspace_freq 4, --iter 5002).

Iterations per target, for every row: the CDC README.md:166 ("adapting a
source GAN on FFHQ to artistic domains (e.g. Sketches/Amedeo's paintings)
delivers decent results in 4k-5k iterations. For domains closer to natural
faces (e.g. Babies/Sunglasses), we get the best results in about 1k
iterations"): 1000 for babies and sunglasses, else 5000 (run.sh's --iter 5002);
'cdc_argparse' keeps 5000 everywhere. The RICK / AdAM configs built on this one
set their own. Batch 4 (--batch 4).

Paper-comparable FID / KID (5,000 samples against the target's images other
than the 10 shots, on pytorch-fid's Inception): add
--config.eval.reference=DIR --config.eval.inception_weights=PTH (common.paper_eval).

'dcl' here is DCL's paper row, the alias 'dcl_paper' of configs/common.py
(dcl composed with CDC's anchors and patch-level D, cdc kl_wt=0), because the
official DCL model.py ships CDC's patch discriminator (fsig_jax/methods/dcl.py,
"Paper configuration"); 'dcl+tgan' gives DCL alone.
"""
from configs import common
from fsig_jax.data import ada


# Methods whose paper row is a composition (configs/common.py ALIASES).
PAPER_ROWS = {'dcl': 'dcl_paper', 'cdc_argparse': 'cdc'}
# CDC README.md:166: targets close to natural faces are best after about 1k iterations.
STEPS = {'babies': 1000, 'sunglasses': 1000}
DEFAULT_STEPS = 5000  # run.sh:18 and train.py:453 --iter 5002; README.md:166 "4k-5k"


def steps_for(target: str) -> int:
  """The CDC README's iteration count for `target` (README.md:166)."""
  return STEPS.get(target, DEFAULT_STEPS)


def get_config(arg: str = 'cdc,babies'):
  method, target = common.split_arg(arg, 'METHOD,TARGET')
  c = common.base(PAPER_ROWS.get(method, method))
  if method == 'cdc':  # run.sh:18: --augment (adaptive ADA from p = 0), --subspace_freq 2
    c.hparams.augment = ada.POLICY
    c.hparams.augment_p = 0.0
    c.method.kwargs.cdc = dict(n_train=10, highp=1, subspace_freq=2)
  c.model.checkpoint = 'checkpoints/ffhq256.pt'
  c.model.resolution = 256
  c.model.description = ('the FFHQ 256px StyleGAN2 source model (rosinality 550000.pt from '
                         'the CDC README, or an FFHQ-256 stylegan2-ada .pkl)')
  c.data.source = f'data/{target}'
  c.data.description = (f'the 10-shot "{target}" images from the CDC repository '
                        '(few-shot-gan-adaptation, "processed_data" / the 10-shot folders)')
  c.steps = DEFAULT_STEPS if method == 'cdc_argparse' else steps_for(target)
  c.checkpoint_every = 500
  c.sample_every = 500
  return common.paper_eval(c)
