"""SSIM-A's memory and time: one key at a time (rematerialised) vs all keys at once.

  python benchmarks/ssim_a_memory.py    # < 5 min
  # whole 64 px steps, compiled memory (the step's share of the same change):
  python benchmarks/step_time.py --resolutions=64 --methods=cdc,kd_fsig --memory_only \
      --method_kwargs='{"kd_fsig": {"source_images": "synthetic"}}'

`fsig_jax.losses.relation.ssim_a_matrix` takes KD-FSIG's query-key pairs one
key at a time under `jax.checkpoint`; until session 9 it took every key at
once (below, `all_keys_at_once`, kept here as the baseline). Both run in this
process, compiled as the gradient of a weighted sum of the (1, K) similarities
of one query row against K keys (KD-FSIG's shape: one anchor row against
(B - 1) + B + Q = 3 + 4 + 16 = 23 keys; the keys here are stop-gradient, as the
momentum and queue keys are), on each map shape of a 64 px rosinality-width
StyleGAN2 (8..64 px, 512 channels). Printed: XLA's temporary buffer size of
the compiled program (`memory_analysis().temp_size_in_bytes`), seconds per
call (median of --repeats) and the largest difference.

Whole steps (64 px, rosinality widths, batch 4, the lazy regularisers as in
training) are `benchmarks/step_time.py --memory_only`, second command above:
each method's compiled step's temporary, argument and output sizes in GiB.
"""
import statistics
import time

from absl import flags
import jax
import jax.numpy as jnp

from fsig_jax.losses.relation import _moments, _ssim_from_moments, gaussian_filter, \
    gaussian_window_1d, ssim_a_matrix
from fsig_jax.utils.cli import run_main

REPEATS = flags.DEFINE_integer('repeats', 3, 'timed calls per implementation and shape')
KEYS = flags.DEFINE_integer('keys', 23, 'keys per query row')
SHAPES = ((8, 8, 512), (16, 16, 512), (32, 32, 512), (64, 64, 512))


def all_keys_at_once(queries, keys, padding='same', c1=1e-4, c2=9e-4):
  """The former ssim_a_matrix: every key's moments and E[q k] at once, no remat."""
  g = gaussian_window_1d()
  kf = keys.astype(jnp.float32)
  mu_k, e_kk = _moments(kf, g, padding)
  mu_q, e_qq = _moments(queries, g, padding)

  def row(q, mu, e):
    e_qk = gaussian_filter(q.astype(jnp.float32)[None] * kf, g, padding)
    return _ssim_from_moments(mu[None], e[None], mu_k, e_kk, e_qk, c1, c2)

  return jax.vmap(row)(queries, mu_q, e_qq)


def _program(sim, k: int):
  weights = jnp.arange(k, dtype=jnp.float32)
  return jax.jit(jax.grad(lambda q, keys: jnp.sum(
      sim(q, jax.lax.stop_gradient(keys)) * weights)))


def _measure(f, q, keys):
  compiled = f.lower(q, keys).compile()
  temp = compiled.memory_analysis().temp_size_in_bytes / 2**30
  out = compiled(q, keys)
  out.block_until_ready()
  times = []
  for _ in range(REPEATS.value):
    t = time.perf_counter()
    compiled(q, keys).block_until_ready()
    times.append(time.perf_counter() - t)
  return temp, statistics.median(times), out


def main(argv):
  del argv
  k = KEYS.value
  print(f'one query row against {k} stop-gradient keys, gradient w.r.t. the query; '
        f'device {jax.devices()[0]}')
  print('| map | all keys: temp GB | s | one key + remat: temp GB | s | memory | speed | '
        'max diff |\n|---|---|---|---|---|---|---|---|')
  for shape in SHAPES:
    q = jax.random.normal(jax.random.PRNGKey(0), (1,) + shape)
    keys = jax.random.normal(jax.random.PRNGKey(1), (k,) + shape)
    t_old, s_old, g_old = _measure(_program(all_keys_at_once, k), q, keys)
    t_new, s_new, g_new = _measure(_program(ssim_a_matrix, k), q, keys)
    diff = float(jnp.max(jnp.abs(g_old - g_new)))
    print(f'| {shape} | {t_old:.3f} | {s_old:.3f} | {t_new:.3f} | {s_new:.3f} | '
          f'{t_new / t_old:.2f}x | {s_old / s_new:.1f}x faster | {diff:.1e} |', flush=True)


if __name__ == '__main__':
  run_main(main)
