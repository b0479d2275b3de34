"""KDIT part 2 on the offline benchmarks: SPADE-style students, spatial and vector conditions.

  # Spatial (sketch -> photo, 500 pairs): stage 1 = the dagger distillation, then stage 2
  python launch/main.py --config=configs/kdit_spade.py:distill,spatial --workdir=runs/ks_s1
  python launch/main.py --config=configs/kdit_spade.py:stage2,spatial \
      --config.init=runs/ks_s1 --workdir=runs/ks_s2
  python launch/main.py --config=configs/kdit_spade.py:scratch,spatial --workdir=runs/spade
  # Vector (an analogue of text-to-image: the pooled VGG16 features of the sketch as c):
  python launch/main.py --config=configs/kdit_spade.py:distill,vector --workdir=runs/kv_s1
  python launch/main.py --config=configs/kdit_spade.py:distill,vector_nodiv --workdir=runs/x

The argument is STAGE,COND: STAGE distill, stage2 (needs --config.init) or
scratch; COND spatial, vector, or vector_nodiv (distillation without the
semantic diversity loss: the paper's double-dagger row). Needs ../shared and
models/anime64 (the teacher).
"""
from configs import common
from fsig_jax.distill import kdit_spade


def get_config(arg: str = 'distill,spatial'):
  stage, _, cond = arg.partition(',')
  if stage not in ('distill', 'stage2', 'scratch') or cond not in (
      'spatial', 'vector', 'vector_nodiv'):
    raise common.ConfigError(f'bad argument {arg!r}: use STAGE,COND with STAGE distill, '
                             'stage2 or scratch and COND spatial, vector or vector_nodiv')
  c = kdit_spade.default_config()
  c.cond = 'vector' if cond.startswith('vector') else 'spatial'
  if cond == 'vector_nodiv':
    c.kdit.lambda_srl = 0.0
  c.teacher.checkpoint = common.ANIME64
  c.stage = 1 if stage == 'distill' else 2
  c.distilled = stage == 'stage2'
  c.data.train_pairs = 500 if c.cond == 'spatial' else 300
  return c
