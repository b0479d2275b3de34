"""TGAN: plain fine-tuning of the pretrained G and D (Wang et al. ECCV 2018).

Transferring GANs fine-tunes every parameter of both networks on the target
data with the source model's losses; the engine's default step is exactly
that, so the method adds nothing. With hp.augment = 'ada' it is the "TGAN+ADA"
baseline row of CDC's tables (CDC's train.py --augment: rosinality's non-leaking
ADA with the adaptive p, fsig_jax/data/ada.py; configs/common.py 'tgan_ada'); with a
DiffAugment policy it is TGAN+DiffAugment (Zhao et al. NeurIPS 2020; 'tgan_diffaug').
"""
from fsig_jax.methods.base import Method


def tgan() -> Method:
  return Method(name='tgan')
