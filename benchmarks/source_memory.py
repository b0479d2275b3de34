"""Resident memory of a training set held as float32, as uint8, or streamed from disk.

  python benchmarks/source_memory.py ../shared/data/anime_faces_64/train --resolution=64

Each way runs in a fresh process (so one does not inherit another's memory):
the process's resident set size (VmRSS) before loading, after loading, and
after drawing batches of 16 with `BatchSampler` (seed 0), plus the load time
and the time per batch. 'float32' is how the set was held before (the loader's
float32 array), 'uint8' and 'stream' are `data.image_set.load_image_set`
below and above `data.stream_above`.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def rss_mb() -> float:
  with open('/proc/self/status') as f:
    kb = next(int(l.split()[1]) for l in f if l.startswith('VmRSS:'))
  return kb / 1024


def measure(way: str, folder: str, resolution: int, batches: int) -> dict:
  from fsig_jax.data.image_set import load_image_set  # pylint: disable=g-import-not-at-top
  from fsig_jax.data.images import load_images  # pylint: disable=g-import-not-at-top
  from fsig_jax.data.sources import BatchSampler  # pylint: disable=g-import-not-at-top
  before = rss_mb()
  t0 = time.time()
  if way == 'float32':
    images = load_images(folder, resolution)
  else:
    images = load_image_set(folder, resolution, stream_above=1 if way == 'stream' else 0)
  load_s = time.time() - t0
  loaded = rss_mb()
  sampler = BatchSampler(images, 16, seed=0, flip=True)
  t0 = time.time()
  for step in range(batches):
    sampler.batch(step)
  return dict(way=way, images=len(images), rss_before_mb=round(before, 1),
              rss_loaded_mb=round(loaded, 1), rss_after_batches_mb=round(rss_mb(), 1),
              load_seconds=round(load_s, 1),
              ms_per_batch=round(1000 * (time.time() - t0) / batches, 2))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('folder')
  p.add_argument('--resolution', type=int, default=64)
  p.add_argument('--batches', type=int, default=200)
  p.add_argument('--way', choices=('float32', 'uint8', 'stream'), help='(one way, internal)')
  a = p.parse_args()
  if a.way:
    print(json.dumps(measure(a.way, a.folder, a.resolution, a.batches)))
    return
  for way in ('float32', 'uint8', 'stream'):
    r = subprocess.run([sys.executable, __file__, a.folder, f'--resolution={a.resolution}',
                        f'--batches={a.batches}', f'--way={way}'], capture_output=True, text=True,
                       check=True)
    print(r.stdout.strip().splitlines()[-1], flush=True)


if __name__ == '__main__':
  main()
