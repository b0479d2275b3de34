"""RICK on FFHQ 256 -> Babies 10-shot.

  python launch/main.py --config=configs/rick_babies.py \
      --config.model.checkpoint=550000.pt --config.data.source=data/babies --workdir=runs/x
  python launch/main.py --config=configs/rick_babies.py:ewc+rick ...   # EWC+RICK
  python launch/main.py --config=configs/rick_babies.py:adam+rick ...  # AdAM+RICK (AdAM's
                                                                       # Babies quantile 50)

Settings from the yunqing-me/RICK README for Babies: 1750 iterations,
fisher_quantile 40, prune_quantile 0.1, batch 2, num_fisher_img 5,
fisher_freq 50, warmup 250. Users provide the source checkpoint and the 10
Babies images (see configs/paper_ffhq256.py). The optional argument is the
method composition; it must include rick.
"""
from configs import common, paper_ffhq256


def get_config(arg: str = 'rick'):
  c = paper_ffhq256.get_config(f'{arg or "rick"},babies')
  common.rick_paper_setup(c, fisher_quantile=40.0, prune_quantile=0.1)
  c.steps = 1750
  return c
