"""Any method on any offline 10-shot target, from the offline source model.

  python launch/main.py --config=configs/offline.py:cdc,babies --workdir=runs/cdc_babies
  python launch/main.py --config=configs/offline.py:ewc+cdc,sketches --workdir=runs/x

The argument is METHOD,TARGET: METHOD a registered method ('tgan', 'freezed',
'ewc', 'cdc', 'dcl', 'adam', ...), a '+'-joined composition, or an alias from
configs/common.py ('tgan_ada', 'tgan_diffaug', ...); TARGET one of ../shared/data/ten_shot/<set> or a derived target with a real
test set ('anime_sketch': XDoG sketches of 10 anime faces, fsig_jax/data/targets.py).
"""
import os

from configs import common
from fsig_jax.errors import ConfigError


def get_config(arg: str = 'tgan,babies'):
  method, target = common.split_arg(arg, 'METHOD,TARGET')
  if target not in common.TARGETS + tuple(common.DERIVED):
    raise ConfigError(f'unknown target {target!r}; choose from '
                     f'{common.TARGETS + tuple(common.DERIVED)}')
  c = common.base(method)
  c.model.checkpoint = common.ANIME64
  if target in common.DERIVED:
    c.data.source = common.DERIVED[target]
  else:
    c.data.source = os.path.join(common.TEN_SHOT, target)
    c.data.description = f'the 10-shot set ../shared/data/ten_shot/{target}'
  c.steps = 1000
  if 'kd_fsig' in c.method.names.split(','):  # SDD's real source images: the anime train split
    kw = c.method.kwargs.get('kd_fsig')
    kw = kw.to_dict() if kw is not None else {}
    if kw.get('sdd_weight', 0.1) > 0:
      kw['source_images'] = common.ANIME_TRAIN
    c.method.kwargs.kd_fsig = kw
  return common.offline_eval(c, target)
