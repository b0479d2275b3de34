"""AdAM (Zhao et al. NeurIPS 2022) in its paper setting: FFHQ 256 px -> 10-shot AFHQ-Cat.

  python launch/main.py --config=configs/adam_afhq_cat.py \
      --config.model.checkpoint=style_gan_source_ffhq.pt --config.data.source=data/afhq_cat_10 \
      --workdir=runs/adam_afhq_cat

As the official scripts (yunqing-me/AdAM, _bash_importance_probing.sh and
_bash_main_adaptation.sh, "FFHQ - AFHQ-Cat"): importance probing for 500
iterations with the Fisher from 250 batches of 4 images, fisher_quantile 75,
2500 adaptation iterations, batch 4, lr 0.002, no augmentation. Users provide
the FFHQ 256 source checkpoint and 10 AFHQ-Cat images, as for
configs/paper_afhq.py (same default paths, checkpoints/ffhq256.pt and
data/afhq_cat_10); a missing one is reported with how to get it.
"""
import ml_collections

from configs import paper_afhq


def get_config():
  c = paper_afhq.get_config('adam,cat')
  c.model.description = ('the FFHQ 256px StyleGAN2 source model (the AdAM README\'s '
                         '"style_gan_source_ffhq.pt", i.e. rosinality 550000.pt, or an '
                         'FFHQ-256 stylegan2-ada .pkl)')
  c.data.description = '10 AFHQ-cat images at 256px (the AdAM README\'s 10-shot AFHQ-Cat set)'
  c.method.kwargs.adam = ml_collections.ConfigDict(
      dict(fisher_quantile=75.0, probe_steps=500, num_batch_fisher=250))
  c.steps = 2500          # _bash_main_adaptation.sh --iter 2500 (its loop runs iter + 10)
  c.checkpoint_every = 500
  c.sample_every = 100    # --samples_freq 100
  return c
