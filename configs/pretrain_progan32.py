"""The small ProGAN fsig-jax trains on 2 CPU cores: 32 px, about half an hour.

  python launch/main.py --config=configs/pretrain_progan32.py --workdir=runs/pretrain_progan32

`configs/pretrain_progan64.py` with the `progan32` preset (widths 128/128/64/32,
z = 128) and phases of 15k images instead of 60k: 4 px, then a fade and a
stabilisation per resolution, 32 px fully faded in after 90k images, then
30k more at 32 px (7,500 steps at batch 16 = 120k images). The anime faces are resized to
32 px on load. Adapt it with RICK as in the README's ProGAN section.
"""
from configs import pretrain_progan64


def get_config():
  c = pretrain_progan64.get_config()
  c.model.checkpoint = 'random:progan32'
  c.progressive.train_kimg = 15.0
  c.progressive.transition_kimg = 15.0
  c.steps = 7_500
  return c
