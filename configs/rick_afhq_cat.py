"""RICK on FFHQ 256 -> AFHQ-Cat 10-shot: the paper's headline setting.

  python launch/main.py --config=configs/rick_afhq_cat.py \
      --config.model.checkpoint=ffhq256.pt --config.data.source=data/afhq_cat_10 --workdir=runs/x
  python launch/main.py --config=configs/rick_afhq_cat.py:ewc+rick ...   # EWC+RICK
  python launch/main.py --config=configs/rick_afhq_cat.py:adam+rick ...  # AdAM+RICK

Settings from the yunqing-me/RICK README for AFHQ-Cat: 2250 iterations,
fisher_quantile 85, prune_quantile 0.075, batch 2, num_fisher_img 5,
fisher_freq 50, warmup 250. Users provide the FFHQ 256 checkpoint (rosinality
.pt or ada .pkl) and the 10 AFHQ-Cat images (see configs/paper_afhq.py).
The optional argument is the method composition; it must include rick.
"""
from configs import common, paper_afhq


def get_config(arg: str = 'rick'):
  c = paper_afhq.get_config(f'{arg or "rick"},cat')
  common.rick_paper_setup(c, fisher_quantile=85.0, prune_quantile=0.075)
  if 'adam' in str(c.method.names).split(','):
    c.method.kwargs.adam = dict(fisher_quantile=75.0)  # AdAM's AFHQ-Cat quantile
  c.steps = 2250
  return c
