"""Default adaptation hyper-parameters, each with its source.

The defaults are those of rosinality/stylegan2-pytorch train.py, which CDC,
DCL, RICK and AdAM all build on; CDC's few-shot setting uses batch 4.
"""
from typing import List

import ml_collections


def default_hparams() -> ml_collections.ConfigDict:
  hp = ml_collections.ConfigDict()
  hp.batch_size = 4            # CDC train.py --batch 4
  hp.lr = 0.002                # rosinality --lr
  hp.beta1 = 0.0               # rosinality Adam betas (0, 0.99)
  hp.beta2 = 0.99
  hp.r1_gamma = 10.0           # rosinality --r1
  hp.d_reg_every = 16          # rosinality --d_reg_every (lazy R1)
  hp.pl_weight = 2.0           # rosinality --path_regularize
  hp.g_reg_every = 4           # rosinality --g_reg_every (lazy path length)
  hp.pl_batch_shrink = 2       # rosinality --path_batch_shrink
  hp.pl_decay = 0.01           # rosinality g_path_regularize decay
  hp.mixing_prob = 0.9         # rosinality --mixing
  hp.ema_beta = 0.5 ** (32 / (10 * 1000))  # rosinality accum; = ADA ema_kimg rule
  hp.w_avg_beta = 0.995        # ada-pytorch MappingNetwork w_avg_beta
  # Augmentation of every image D sees: '' none; 'ada' CDC's --augment, rosinality's
  # non-leaking ADA with an adaptive p (fsig_jax/data/ada.py; the TGAN+ADA row); any
  # other string a DiffAugment policy, e.g. 'color,translation,cutout' (data/augment.py).
  hp.augment = ''
  # DiffAugment: each op's probability. ADA: CDC's --augment_p (train.py:181, :239):
  # > 0 a fixed p, 0 the adaptive p starting at 0 (configs set 0 for 'ada').
  hp.augment_p = 1.0
  hp.ada_target = 0.6          # CDC train.py --ada_target (the r_t the adaptive p aims at)
  hp.ada_length = 500 * 1000   # CDC train.py --ada_length (predictions for p to move by 1 x target)
  # The adversarial loss: 'logistic' (StyleGAN2, non-saturating) or 'wgan_gp'
  # (ProGAN's WGAN-GP, Karras et al. 2018 App. A.1: lambda 10 every step, drift 0.001).
  hp.loss = 'logistic'
  hp.gp_weight = 10.0
  hp.drift = 0.001
  # Mixed precision: 'bfloat16' runs G and D in bfloat16 with float32 parameters,
  # optimiser state and losses (models/functional.py; for GPU/TPU: CPUs emulate it).
  hp.compute_dtype = 'float32'
  return hp


# ADA's augmentations start to leak into G above p of about 0.8 (Karras et al. 2020,
# 'Training Generative Adversarial Networks with Limited Data', Sec. 2).
ADA_LEAK_P = 0.8


def warnings(hp) -> List[str]:
  """Settings that are valid but most likely not meant; the adaptation loop logs
  each as a warning at the start (a deliberate choice stays possible)."""
  out = []
  if hp.augment == 'ada' and hp.augment_p > ADA_LEAK_P:
    out.append(
        f"hparams.augment='ada' with augment_p={hp.augment_p:g}: a fixed p above "
        f'{ADA_LEAK_P} (augment_p defaults to DiffAugment\'s 1.0), where ADA leaks its '
        "augmentations into the generator; CDC's --augment is the adaptive p: pass "
        '--config.hparams.augment_p=0 (the tgan_ada and CDC paper configs do)')
  return out


def lazy_ratio(every: int) -> float:
  """Adam lr/beta correction for lazy regularisation (StyleGAN2 App. B)."""
  return every / (every + 1) if every and every > 0 else 1.0
