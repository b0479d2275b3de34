"""fsig-jax's XLA:CPU option (YNNPACK fusions off) against XLA's default, per program.

  python benchmarks/xla_cpu_options.py                       # the default programs
  python benchmarks/xla_cpu_options.py --programs=adapt64_cdc --calls=32

Each program is lowered once and compiled twice in this one process: with
XLA's defaults ('xla') and with `fsig_jax.utils.xla_cpu.OPTIONS` ('fsig', what
importing fsig_jax sets), through `Lowered.compile(compiler_options=...)`.
This script turns fsig_jax's import-time default off (FSIG_XLA_CPU_DEFAULTS=0,
before any import) so that 'xla' really is XLA's default. For each program and
setting it reports the compile seconds, XLA's temporaries (GiB), the size of
the serialised executable and the seconds to load it back
(`jax.experimental.serialize_executable`: the work of a warm start's cache
hit), and the median seconds per call over `--calls` calls made in rotation
(call i of every compiled program before call i + 1 of any, after one
warm-up call each), so a change in the machine's load falls on both settings
alike; then the ratios fsig / xla.

Programs (all float32, CPU):
  adapt64_tgan, adapt64_cdc  the full adaptation step (benchmarks/adapt_step.py:
                             rosinality widths, batch 4, lazy R1 and path length;
                             the default 16 calls are one whole lazy cycle, so the
                             mean is what a long run costs per step)
  stargan64                  KDIT's StarGAN v2 student at the README's reduced
                             widths (dim_in 32, max_conv_dim 128, mapping 128),
                             gradient of an L1 + D loss through G, style
                             encoder and D, batch 8
  unet_mspade64              GPD's default student, gradient of an L1 loss, batch 8
  vgg64                      the FID-VGG feature extractor on 64 images of 64 px
"""
import os

os.environ['FSIG_XLA_CPU_DEFAULTS'] = '0'  # before fsig_jax (or jax) is imported
# pylint: disable=g-import-not-at-top,wrong-import-position
import json
import statistics
import time

from absl import flags
import jax
from jax.experimental import serialize_executable
import jax.numpy as jnp

import adapt_step
from fsig_jax.errors import ConfigError
from fsig_jax.metrics import features
from fsig_jax.models import students
from fsig_jax.models.students import stargan_v2
from fsig_jax.utils import xla_cpu
from fsig_jax.utils.cli import run_main
from fsig_jax.utils.files import write_text

PROGRAMS = flags.DEFINE_string('programs', 'adapt64_tgan,stargan64,unet_mspade64,vgg64',
                               'comma-separated programs (see the docstring)')
CALLS = flags.DEFINE_integer('calls', 16, 'timed calls of each compiled program, in rotation '
                            '(16: one lazy-regularisation cycle of the adaptation step)')
OUT = flags.DEFINE_string('out', '', 'also write the rows as JSON here')

SETTINGS = {'xla': None, 'fsig': xla_cpu.OPTIONS}


def _adapt(method: str):
  built = adapt_step.build(64, method)
  lowered = built.step.lower(built.state, built.real, built.extra)
  return lowered, built.state, lambda compiled, state: compiled(state, built.real, built.extra)


def _stargan64():
  cfg = stargan_v2.StarGANv2Config(resolution=64, dim_in=32, max_conv_dim=128,
                                   mapping_hidden=128)
  nets = stargan_v2.networks(cfg)
  params = stargan_v2.init_stargan(cfg, jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (8, 64, 64, 3), minval=-1)
  y = jnp.arange(8) % cfg.num_domains

  def loss(p):
    s = nets['style'].apply({'params': p['style']}, x, y)
    out = nets['G'].apply({'params': p['G']}, x, s)
    return jnp.mean(jnp.abs(out - x)) + jnp.mean(nets['D'].apply({'params': p['D']}, out, y))
  fn = jax.jit(jax.value_and_grad(loss))
  return fn.lower(params), params, lambda compiled, p: (p, compiled(p))


def _unet_mspade64():
  cfg = students.CONFIGS['unet_mspade'](resolution=64)
  params = students.init_student(cfg, jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (8, 64, 64, cfg.in_channels), minval=-1)
  fn = jax.jit(jax.value_and_grad(
      lambda p: jnp.mean(jnp.abs(students.apply_student(cfg, p, x) - x[..., :3]))))
  return fn.lower(params), params, lambda compiled, p: (p, compiled(p))


def _vgg64():
  trunk = features.lpips_lib.vgg16_trunk()
  images = jax.random.uniform(jax.random.PRNGKey(1), (64, 64, 64, 3), minval=-1)
  lowered = features.vgg16_pool.lower(trunk, images)
  return lowered, images, lambda compiled, x: (x, compiled(trunk, x))


BUILDERS = {'adapt64_tgan': lambda: _adapt('tgan'), 'adapt64_cdc': lambda: _adapt('cdc'),
            'stargan64': _stargan64, 'unet_mspade64': _unet_mspade64, 'vgg64': _vgg64}


def _load_seconds(compiled) -> tuple:
  """(MB, seconds) of the serialised executable and of loading it back."""
  payload, in_tree, out_tree = serialize_executable.serialize(compiled)
  t = time.perf_counter()
  serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
  return len(payload) / 2**20, time.perf_counter() - t


def main(argv):
  del argv
  names = PROGRAMS.value.split(',')
  unknown = [n for n in names if n not in BUILDERS]
  if unknown:
    raise ConfigError(f'--programs: unknown {unknown}; known: {sorted(BUILDERS)}')
  runs = []
  for name in names:
    lowered, carry, call = BUILDERS[name]()
    for setting, options in SETTINGS.items():
      t = time.perf_counter()
      compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
      compile_s = time.perf_counter() - t
      mb, load_s = _load_seconds(compiled)
      text = compiled.as_text() or ''
      # the adaptation step donates (consumes) its state: each setting gets its own copy
      own = jax.tree.map(jnp.copy, carry)
      runs.append(dict(program=name, setting=setting, compiled=compiled, call=call, carry=own,
                       compile_s=compile_s, executable_mb=mb, load_s=load_s,
                       temp_gib=adapt_step.memory_gib(compiled)['temp_gib'],
                       ynn_fusions=text.count('ynn_fusion'), times=[]))
      print(f'{name} [{setting}]: compiled in {compile_s:.1f}s, {mb:.1f} MB loads in '
            f'{load_s:.2f}s, {runs[-1]["ynn_fusions"]} YNN fusion mentions', flush=True)
  for i in range(CALLS.value + 1):  # call 0 is the warm-up
    for run in runs:
      t = time.perf_counter()
      run['carry'], out = run['call'](run['compiled'], run['carry'])
      jax.block_until_ready(out)
      run['times'].append(time.perf_counter() - t)
    print(f'call {i}/{CALLS.value}: ' + ', '.join(
        f'{r["program"]}[{r["setting"]}] {r["times"][-1]:.2f}s' for r in runs), flush=True)
  rows, base = [], {}
  for run in runs:
    timed = run['times'][1:]
    row = {'program': run['program'], 'setting': run['setting'],
           'compile_s': round(run['compile_s'], 1), 'temp_gib': run['temp_gib'],
           'executable_mb': round(run['executable_mb'], 2), 'load_s': round(run['load_s'], 2),
           'median_call_s': round(statistics.median(timed), 4),
           'mean_call_s': round(sum(timed) / len(timed), 4), 'calls': len(timed),
           'ynn_fusion_mentions': run['ynn_fusions']}
    if run['setting'] == 'xla':
      base = row
    else:
      row['ratio_to_xla'] = {k: round(row[k] / base[k], 3) for k in
                             ('compile_s', 'temp_gib', 'executable_mb', 'load_s',
                              'median_call_s', 'mean_call_s') if base.get(k)}
    rows.append(row)
    print(json.dumps(row), flush=True)
  print(f'device {jax.devices()[0]}, jax {jax.__version__}, fsig options {xla_cpu.OPTIONS}')
  if OUT.value:
    write_text(OUT.value, json.dumps(rows, indent=2), setting='--out')


if __name__ == '__main__':
  run_main(main)
