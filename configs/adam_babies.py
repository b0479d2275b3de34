"""AdAM (Zhao et al. NeurIPS 2022) in its paper setting: FFHQ 256 px -> 10-shot Babies.

  python launch/main.py --config=configs/adam_babies.py \
      --config.model.checkpoint=style_gan_source_ffhq.pt --config.data.source=data/babies \
      --workdir=runs/adam_babies

As the official scripts (yunqing-me/AdAM, _bash_importance_probing.sh and
_bash_main_adaptation.sh, "FFHQ - Babies"): importance probing for 500
iterations with the Fisher from 250 batches of 4 images, fisher_quantile 50,
1500 adaptation iterations, batch 4, lr 0.002, no augmentation. Users provide
the FFHQ 256 source checkpoint and the 10 target images, as for
configs/paper_ffhq256.py (same default paths, checkpoints/ffhq256.pt and
data/babies); a missing one is reported with how to get it.
"""
import ml_collections

from configs import paper_ffhq256


def get_config():
  c = paper_ffhq256.get_config('adam,babies')
  c.model.description = ('the FFHQ 256px StyleGAN2 source model (the AdAM README\'s '
                         '"style_gan_source_ffhq.pt", i.e. rosinality 550000.pt as in the CDC '
                         'README, or an FFHQ-256 stylegan2-ada .pkl)')
  c.data.description = ('the 10-shot "babies" images (the AdAM README\'s 10-shot Babies set, '
                        'or the CDC repository\'s 10-shot babies folder)')
  c.method.kwargs.adam = ml_collections.ConfigDict(
      dict(fisher_quantile=50.0, probe_steps=500, num_batch_fisher=250))
  c.steps = 1500          # _bash_main_adaptation.sh --iter 1500 (its loop runs iter + 10)
  c.checkpoint_every = 500
  c.sample_every = 100    # --samples_freq 100
  return c
