"""Seconds per adaptation step over whole lazy-regularisation cycles, compile
time, and achieved GFLOP/s.

  python benchmarks/step_time.py --resolutions=64,256 --methods=tgan,cdc --cycles=1
  python benchmarks/step_time.py --resolutions=64 --conv_impls=im2col,hybrid
  python benchmarks/step_time.py --resolutions=64 --methods=cdc,kd_fsig --interleave \
      --method_kwargs='{"kd_fsig": {"source_images": "synthetic"}}'

Models are rosinality-width StyleGAN2s (channel multiplier 2, z = w = 512,
8 mapping layers), batch 4, randomly initialised (the step is built by
benchmarks/adapt_step.py, shared with compare_torch.py). The training step is D update,
lazy R1 every d_reg_every (16) steps, G update, lazy path length every
g_reg_every (4), EMA; so the steps of one cycle of lcm(16, 4) = 16 steps differ.
After one warm-up call, `--cycles` whole cycles are timed and reported per kind
of step, each labelled: `plain_step_s` (no regulariser; 12 of 16 steps),
`pl_step_s` (path length only; 3 of 16), `r1_pl_step_s` (both; 1 of 16), all
medians, and `mean_step_s`, the cycle's total over its steps: what a long run
costs per step. XLA's cost analysis counts both sides of
the lax.cond that holds each lazy regulariser, so GFLOP/s are measured on the
core step (regularisers off), whose FLOP count is exactly what runs:
`core_achieved_gflops = core_xla_gflop / core_step_s`. `step_temp_gib` is
XLA's memory_analysis of the compiled full step: the temporaries the step
program allocates besides its arguments and outputs (activations, autodiff
residuals), deterministic for a given program, unlike a process's RSS.
`--interleave` compiles every listed method's full step (with --conv_impls,
each method under each implementation), then times them in rotation, step i
of each before step i + 1 of any, and reports each one's times and their
ratios to the first: on a shared or busy machine the load then falls on every
method alike (use it for ratios such as KD-FSIG's step against CDC's; it holds
all the methods' states and programs in memory at once and skips the
core-step FLOP count).
`--memory_only` skips the timing and reports each full step's compiled memory
(`temp_gib`, `argument_gib`, `output_gib`): the figures that decide whether
a step fits, in the time of one compile.
`--conv_impls` runs each listed conv implementation (fsig_jax/nn/conv.py) in
this one process, one after the other, and prints each row's times and
temporaries as ratios to the first listed (the same process and machine).
For reference (issue 6): the PyTorch rosinality code takes about 29.5 s for a
comparable D+G step at 64 px on the 2-core CI machine.
"""
import json
import math
import os
import statistics
import time

from absl import flags
import jax

import adapt_step
from fsig_jax.engine.hparams import default_hparams
from fsig_jax.errors import ConfigError
from fsig_jax.nn import conv
from fsig_jax.utils.cli import run_main
from fsig_jax.utils.files import write_text

RES = flags.DEFINE_string('resolutions', '64', 'comma-separated resolutions')
METHODS = flags.DEFINE_string('methods', 'tgan', 'comma-separated methods')
CYCLES = flags.DEFINE_integer('cycles', 1, 'timed lazy-regularisation cycles (16 steps each '
                              'by default) after one warm-up call')
BATCH = flags.DEFINE_integer('batch', 4, 'batch size')
MULT = flags.DEFINE_integer('channel_multiplier', 2, 'rosinality channel multiplier')
CONV_IMPLS = flags.DEFINE_string('conv_impls', '', 'comma-separated conv implementations '
                                 '(native, im2col, hybrid) to measure one after the other; '
                                 'empty: the default ($FSIG_CONV_IMPL or the backend default)')
OUT = flags.DEFINE_string('out', '', 'optional JSON file for the results')
INTERLEAVE = flags.DEFINE_bool('interleave', False, 'time the listed methods in rotation, '
                               'step by step, and report ratios to the first (robust to a '
                               'changing load; all compiled steps held in memory at once)')
MEMORY_ONLY = flags.DEFINE_bool('memory_only', False, 'compile each full step and report '
                                'its XLA memory (temporaries, arguments, outputs) without '
                                'timing it: seconds to minutes instead of a whole cycle')
KWARGS = flags.DEFINE_string('method_kwargs', '', 'JSON {method: {arg: value}}, e.g. '
                             '\'{"kd_fsig": {"source_images": "synthetic"}}\' (a method\'s '
                             'image streams are fed random batches here)')


def _measure(built: adapt_step.Step, n_steps: int):
  """Compile time, XLA FLOPs, temporaries and [(step index, seconds)] of the
  `n_steps` steps after one warm-up call (the first call may pay one-time costs)."""
  t0 = time.perf_counter()
  compiled = built.compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get('flops', float('nan')))
  temp = adapt_step.memory_gib(compiled)['temp_gib']
  state, times = built.state, []
  for i in range(n_steps + 1):
    t = time.perf_counter()
    state, metrics = compiled(state, built.real, built.extra)
    jax.block_until_ready(metrics)
    times.append((i, time.perf_counter() - t))
  return compile_s, flops, temp, times[1:]


def step_kind(i: int, hp) -> str:
  """Which lazy regularisers the step starting at index i runs (engine/step.py:
  R1 when i % d_reg_every == 0, path length when i % g_reg_every == 0)."""
  r1 = hp.r1_gamma > 0 and hp.d_reg_every > 0 and i % hp.d_reg_every == 0
  pl = hp.pl_weight > 0 and hp.g_reg_every > 0 and i % hp.g_reg_every == 0
  return {(False, False): 'plain', (False, True): 'pl', (True, False): 'r1',
          (True, True): 'r1_pl'}[(r1, pl)]


def cycle_length(hp) -> int:
  return math.lcm(max(hp.d_reg_every, 1), max(hp.g_reg_every, 1))


def _ratios(row: dict, base: dict) -> dict:
  """`row`'s step times and memory as ratios to `base`'s (the first of a comparison)."""
  return {k: round(v / base[k], 3) for k, v in row.items()
          if k.endswith(('_step_s', '_gib')) and base.get(k)}


def _cycle_times(timed, hp) -> dict:
  """[(step index, seconds)] -> the cycle's mean step and each kind's median and count."""
  kinds = {}
  for i, t in timed:
    kinds.setdefault(step_kind(i, hp), []).append(t)
  return {'timed_steps': len(timed),
          'mean_step_s': round(sum(t for _, t in timed) / len(timed), 3),
          **{f'{k}_step_s': round(statistics.median(v), 3) for k, v in sorted(kinds.items())},
          **{f'{k}_steps': len(v) for k, v in sorted(kinds.items())}}


def bench_interleaved(res: int, names: list, impls: list) -> list:
  """--interleave: the full step of every method (x every conv implementation of
  --conv_impls) compiled, then timed in rotation (step i of each, then step i + 1
  of each), so a change in the machine's load hits all alike and the ratios to
  the first hold on a busy machine. The core-step FLOP count is not measured
  here (run without --interleave)."""
  kwargs = adapt_step.method_kwargs(KWARGS.value)
  runs = []
  for name in names:
    for impl in impls:
      if impl:
        os.environ['FSIG_CONV_IMPL'] = impl  # read when the step is traced
      built = adapt_step.build(res, name, kwargs, BATCH.value, MULT.value)
      t0 = time.perf_counter()
      compiled = built.compile()
      compile_s = time.perf_counter() - t0
      label = name + (f' ({impl})' if impl else '')
      print(f'{res}px {label}: full step compiled in {compile_s:.1f}s', flush=True)
      runs.append(dict(name=name, label=label, built=built, compiled=compiled,
                       state=built.state, compile_s=compile_s, times=[],
                       temp=adapt_step.memory_gib(compiled)['temp_gib'],
                       impl=conv.default_impl()))
  hp = runs[0]['built'].hp
  n = cycle_length(hp) * CYCLES.value
  for i in range(n + 1):  # call 0 is the warm-up
    for run in runs:
      t = time.perf_counter()
      run['state'], metrics = run['compiled'](run['state'], run['built'].real, run['built'].extra)
      jax.block_until_ready(metrics)
      run['times'].append((i, time.perf_counter() - t))
    print(f'step {i}/{n} ({step_kind(i, hp)}): ' + ', '.join(
        f'{run["label"]} {run["times"][-1][1]:.2f}s' for run in runs), flush=True)
  rows = []
  for run in runs:
    row = {'resolution': res, 'method': run['name'], 'batch': hp.batch_size,
           'compile_s': round(run['compile_s'], 1), **_cycle_times(run['times'][1:], hp),
           'step_temp_gib': run['temp'], 'interleaved': [r['label'] for r in runs],
           'device': str(jax.devices()[0]), 'conv_impl': run['impl']}
    if rows:
      row[f'ratio_to_{runs[0]["label"]}'] = _ratios(row, rows[0])
    rows.append(row)
  return rows


def bench(res: int, method_name: str) -> dict:
  """Full step (lazy R1 every 16, path length every 4, as in training) and the
  core step (regularisers off) whose XLA FLOP count is exactly what runs."""
  kwargs = adapt_step.method_kwargs(KWARGS.value)
  full = adapt_step.build(res, method_name, kwargs, BATCH.value, MULT.value)
  hp = full.hp
  n = cycle_length(hp) * CYCLES.value
  compile_s, _, temp, timed = _measure(full, n)
  print(f'{res}px {method_name}: full step compiled in {compile_s:.1f}s', flush=True)
  core_hp = default_hparams()
  core_hp.r1_gamma, core_hp.pl_weight = 0.0, 0.0
  core = adapt_step.build(res, method_name, kwargs, BATCH.value, MULT.value, hp=core_hp)
  _, flops, _, core_timed = _measure(core, 3)
  core_med = statistics.median(t for _, t in core_timed)
  return {'resolution': res, 'method': method_name, 'batch': hp.batch_size,
          'compile_s': round(compile_s, 1), **_cycle_times(timed, hp),
          'core_step_s': round(core_med, 3), 'step_temp_gib': temp,
          'core_xla_gflop': round(flops / 1e9, 1),
          'core_achieved_gflops': round(flops / 1e9 / core_med, 1),
          'device': str(jax.devices()[0]), 'conv_impl': conv.default_impl()}


def memory(res: int, method_name: str) -> dict:
  """The full step's compiled memory, not run (--memory_only)."""
  t0 = time.perf_counter()
  compiled = adapt_step.build(res, method_name, adapt_step.method_kwargs(KWARGS.value),
                              BATCH.value, MULT.value).compile()
  return {'resolution': res, 'method': method_name, 'batch': BATCH.value,
          'compile_s': round(time.perf_counter() - t0, 1), **adapt_step.memory_gib(compiled),
          'device': str(jax.devices()[0]), 'conv_impl': conv.default_impl()}


def main(argv):
  del argv
  if INTERLEAVE.value and MEMORY_ONLY.value:
    raise ConfigError('--interleave times the steps and --memory_only does not run them; '
                      'pass one of the two')
  rows = []
  impls = CONV_IMPLS.value.split(',') if CONV_IMPLS.value else [None]
  for res in [int(r) for r in RES.value.split(',')]:
    if INTERLEAVE.value:
      for row in bench_interleaved(res, METHODS.value.split(','), impls):
        rows.append(row)
        print(json.dumps(row), flush=True)
      continue
    for m in METHODS.value.split(','):
      base = None
      for impl in impls:
        if impl:
          os.environ['FSIG_CONV_IMPL'] = impl  # read when the step is traced
        row = (memory if MEMORY_ONLY.value else bench)(res, m)
        base = base or row
        if impl and impl != impls[0]:
          row[f'ratio_to_{impls[0]}'] = _ratios(row, base)
        rows.append(row)
        print(json.dumps(row), flush=True)
  if OUT.value:
    write_text(OUT.value, json.dumps(rows, indent=2), setting='--out')


if __name__ == '__main__':
  run_main(main)
