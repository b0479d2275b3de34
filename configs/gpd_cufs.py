"""The GPD student on real face photo -> sketch pairs (../shared/data/cufs_pairs_64).

  python launch/main.py --config=configs/gpd_cufs.py:gpd --workdir=runs/gpd_cufs
  python launch/main.py --config=configs/gpd_cufs.py:bl,unet_mspade,20 --workdir=runs/x

The argument is ROW[,STUDENT[,PAIRS]] as in configs/gpd_anime_sketch.py
(no oracle row: the true operator is unknown). Of the 188 pairs, PAIRS evenly
spaced ones train (default 10), the rest test. The teacher is the anime
source adapted to the training sketches: its photos are anime faces, not real
ones, which is what this benchmark measures.
"""
from configs import common


def get_config(arg: str = 'gpd'):
  return common.gpd_from_arg(arg, 'cufs')
