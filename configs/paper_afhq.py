"""AFHQ setting of RICK / AdAM: an FFHQ 256 source -> AFHQ-Cat/Dog/Wild 10-shot.

  python launch/main.py --config=configs/paper_afhq.py:tgan,cat \
      --config.model.checkpoint=ffhq256.pt --config.data.source=data/afhq_cat_10 --workdir=runs/x

Users provide the FFHQ 256 checkpoint and 10 AFHQ images of the chosen class
(the 10-shot subsets RICK and AdAM publish). Paper-comparable FID / KID: add
--config.eval.reference=DIR (the class's images other than the 10 shots) and
--config.eval.inception_weights=PTH (pytorch-fid's weights; common.paper_eval).
"""
from configs import common
from fsig_jax.errors import ConfigError


def get_config(arg: str = 'tgan,cat'):
  method, animal = common.split_arg(arg, 'METHOD,ANIMAL')
  if animal not in ('cat', 'dog', 'wild'):
    raise ConfigError(f'ANIMAL must be cat, dog or wild, got {animal!r}')
  c = common.base(method)
  c.model.checkpoint = 'checkpoints/ffhq256.pt'
  c.model.resolution = 256
  c.model.description = 'the FFHQ 256px StyleGAN2 source model (rosinality .pt or ada .pkl)'
  c.data.source = f'data/afhq_{animal}_10'
  c.data.description = f'10 AFHQ-{animal} images at 256px (the RICK/AdAM 10-shot subsets)'
  c.steps = 2500
  c.checkpoint_every = 500
  c.sample_every = 500
  return common.paper_eval(c)
