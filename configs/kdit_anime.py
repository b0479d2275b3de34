"""KDIT on the offline two-domain benchmark: anime photos <-> XDoG sketches, 100 each.

  # Stage 1: distil the shipped anime StyleGAN2 into a StarGAN v2 (data-free):
  python launch/main.py --config=configs/kdit_anime.py:distill --workdir=runs/kdit_s1
  # the paper's ablations: distill,kd_star (no triplets), distill,l1_only, distill,adv_only
  # Stage 2: StarGAN v2's recipe on the 2 x 100 real images, from the distilled student:
  python launch/main.py --config=configs/kdit_anime.py:stage2 \
      --config.init=runs/kdit_s1 --workdir=runs/kdit_s2
  # The baseline arm: the same recipe from scratch:
  python launch/main.py --config=configs/kdit_anime.py:scratch --workdir=runs/stargan

Schedules are the papers' (stage 1: 20k steps at batch 2; stage 2: StarGAN v2's
100k at batch 8); override --config.steps for a shorter run, the same for
both arms. Needs ../shared (anime faces) and models/anime64 (the teacher).
"""
from configs import common
from fsig_jax.distill import kdit, stargan


def get_config(arg: str = 'distill'):
  stage, _, ablation = arg.partition(',')
  if stage == 'distill':
    if (ablation or 'full') not in common.KDIT_ABLATIONS:
      raise common.ConfigError(f'unknown KDIT ablation {ablation!r}; choose from '
                               f'{sorted(common.KDIT_ABLATIONS)}')
    c = kdit.default_config()
    c.teacher.checkpoint = common.ANIME64
    c.student.num_domains = 2  # stage 2's domains: photo, sketch
    for k, v in common.KDIT_ABLATIONS[ablation or 'full'].items():
      c.kdit[k] = v
    return c
  if stage in ('stage2', 'scratch') and not ablation:
    c = stargan.default_config()
    c.data.domains = common.KDIT_DOMAINS
    c.data.resolution = 64
    c.stage = 2 if stage == 'stage2' else 0
    return c
  raise common.ConfigError(f'bad argument {arg!r}: use distill[,ABLATION], stage2 or scratch')
