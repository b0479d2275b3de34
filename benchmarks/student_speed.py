"""Parameter count and forward time per image of the GPD students.

  python benchmarks/student_speed.py --resolutions=64,256 --out=out/student_speed.md

For each student (unet_mspade, pix2pix; default configs at each resolution):
the parameter count and milliseconds per image of a jitted forward pass
(inference: pix2pix dropout off) at --batch, the median of --repeats timed
calls after one warm-up call, each waited for with `block_until_ready`.
Prints a markdown table and writes it to --out.
"""
import statistics
import time

from absl import flags
import jax

from fsig_jax.models import students
from fsig_jax.utils.cli import run_main
from fsig_jax.utils.files import write_text

RES = flags.DEFINE_string('resolutions', '64,256', 'comma-separated resolutions')
ARCHS = flags.DEFINE_string('archs', 'unet_mspade,pix2pix', 'comma-separated students')
BATCH = flags.DEFINE_integer('batch', 8, 'images per forward call')
REPEATS = flags.DEFINE_integer('repeats', 5, 'timed calls after the warm-up')
OUT = flags.DEFINE_string('out', 'out/student_speed.md', 'markdown table file')


def bench(arch: str, res: int) -> dict:
  cfg = students.CONFIGS[arch](resolution=res)
  params = students.init_student(cfg, jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (BATCH.value, res, res, cfg.in_channels),
                         minval=-1, maxval=1)
  fwd = jax.jit(lambda p, x: students.apply_student(cfg, p, x))
  t0 = time.perf_counter()
  fwd(params, x).block_until_ready()  # warm-up: compile and first run
  warm_s = time.perf_counter() - t0
  times = []
  for _ in range(REPEATS.value):
    t = time.perf_counter()
    fwd(params, x).block_until_ready()
    times.append(time.perf_counter() - t)
  med = statistics.median(times)
  return {'arch': arch, 'res': res, 'params': students.param_count(params),
          'ms_per_image': 1e3 * med / BATCH.value, 'warmup_s': warm_s,
          'min_ms': 1e3 * min(times) / BATCH.value, 'max_ms': 1e3 * max(times) / BATCH.value}


def table(rows) -> str:
  lines = ['| student | px | params | ms/image (median) | min-max ms/image | warm-up s |',
           '|---|---:|---:|---:|---:|---:|']
  for r in rows:
    lines.append(f"| {r['arch']} | {r['res']} | {r['params']:,} | {r['ms_per_image']:.1f} | "
                 f"{r['min_ms']:.1f}-{r['max_ms']:.1f} | {r['warmup_s']:.1f} |")
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  rows = []
  for res in [int(r) for r in RES.value.split(',')]:
    for arch in ARCHS.value.split(','):
      rows.append(bench(arch, res))
      print(rows[-1], flush=True)
  text = (f'batch {BATCH.value}, median of {REPEATS.value} calls, device {jax.devices()[0]}, '
          f'jax {jax.__version__}\n\n' + table(rows))
  print(text)
  if OUT.value:
    write_text(OUT.value, text, setting='--out')


if __name__ == '__main__':
  run_main(main)
