"""Median seconds per adaptation step, compile time, and achieved GFLOP/s.

  python benchmarks/step_time.py --resolutions=64,256 --methods=tgan,cdc --steps=5

Models are rosinality-width StyleGAN2s (channel multiplier 2, z = w = 512,
8 mapping layers), batch 4, randomly initialised. FLOPs come from XLA's own
cost analysis of the compiled step (one step = D update + G update; the lazy
R1 / path-length branches are inside lax.cond and counted by XLA as compiled).
Steps alternate regularised and plain ones as in training; the median is
over all measured steps. For reference (issue 6): the PyTorch rosinality code
takes about 29.5 s for a comparable D+G step at 64 px on the 2-core CI machine.
"""
import json
import statistics
import time

from absl import app, flags
import jax
import jax.numpy as jnp

from fsig_jax.engine.hparams import default_hparams
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import get_method
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.config import StyleGAN2Config, rosinality_channels

RES = flags.DEFINE_string('resolutions', '64', 'comma-separated resolutions')
METHODS = flags.DEFINE_string('methods', 'tgan', 'comma-separated methods')
STEPS = flags.DEFINE_integer('steps', 5, 'measured steps after the compile step')
BATCH = flags.DEFINE_integer('batch', 4, 'batch size')
MULT = flags.DEFINE_integer('channel_multiplier', 2, 'rosinality channel multiplier')
OUT = flags.DEFINE_string('out', '', 'optional JSON file for the results')


def bench(res: int, method_name: str) -> dict:
  ch = rosinality_channels(res, MULT.value)
  cfg = StyleGAN2Config(res, ch, ch, z_dim=512, w_dim=512, n_mlp=8)
  hp = default_hparams()
  hp.batch_size = BATCH.value
  method = get_method(method_name.split('+'))
  bundle = init_bundle(cfg, jax.random.PRNGKey(0))
  state = init_state(bundle, hp, method, jax.random.PRNGKey(1),
                     images=jnp.zeros((10, res, res, 3)))
  real = jax.random.uniform(jax.random.PRNGKey(2), (hp.batch_size, res, res, 3), minval=-1)
  step = make_train_step(cfg, hp, method)
  t0 = time.perf_counter()
  compiled = step.lower(state, real).compile()
  compile_s = time.perf_counter() - t0
  print(f'{res}px {method_name}: compiled in {compile_s:.1f}s', flush=True)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get('flops', float('nan')))
  times = []
  for _ in range(STEPS.value + 1):
    t = time.perf_counter()
    state, metrics = compiled(state, real)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t)
  times = times[1:]  # the first call may still pay one-time costs
  med = statistics.median(times)
  return {'resolution': res, 'method': method_name, 'batch': hp.batch_size,
          'compile_s': round(compile_s, 2), 'median_step_s': round(med, 3),
          'min_step_s': round(min(times), 3), 'max_step_s': round(max(times), 3),
          'xla_gflop_per_step': round(flops / 1e9, 2),
          'achieved_gflops': round(flops / 1e9 / med, 1), 'devices': str(jax.devices()[0])}


def main(argv):
  del argv
  rows = []
  for res in [int(r) for r in RES.value.split(',')]:
    for m in METHODS.value.split(','):
      row = bench(res, m)
      rows.append(row)
      print(json.dumps(row), flush=True)
  if OUT.value:
    with open(OUT.value, 'w') as f:
      json.dump(rows, f, indent=2)


if __name__ == '__main__':
  app.run(main)
