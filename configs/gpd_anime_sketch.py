"""The GPD student on anime photo -> XDoG sketch (ground truth for every test face).

  python launch/main.py --config=configs/gpd_anime_sketch.py:gpd --workdir=runs/gpd_anime
  python launch/main.py --config=configs/gpd_anime_sketch.py:bl,pix2pix,20 --workdir=runs/x

The argument is ROW[,STUDENT[,PAIRS]]: ROW one of bl, aug, aug_anchor, gpd,
oracle (configs/common.py `gpd`); STUDENT unet_mspade (default) or pix2pix;
PAIRS the number of training pairs (default 10; `derived:anime_photo:trainN`).
Test: the 2,000 test-split faces and their sketches. Needs ../shared (anime
faces) and the shipped models/anime64 (the teacher's source).
"""
from configs import common


def get_config(arg: str = 'gpd'):
  return common.gpd_from_arg(arg, 'anime_sketch')
