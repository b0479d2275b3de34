"""The conv implementations of fsig_jax/nn/conv.py layer by layer (issue 18).

  python benchmarks/conv_impl.py                       # native, im2col, hybrid
  python benchmarks/conv_impl.py --impls=im2col,hybrid --repeats=5

All implementations run in this process on StyleGAN2 layer shapes of the 64 px
rosinality-width networks (batch 4, NHWC): G's and D's 3x3 convs, D's stride-2
3x3 and 1x1 convs after the blur (whose padding makes the input 2 px larger),
G's transposed stride-2 conv, a 1x1 conv, four 3x3 layers in a row. Per implementation and layer, after
one compile and one warm-up call each, it prints the median seconds of
--repeats calls of: the forward; the forward and backward (gradients w.r.t. x
and w of sum(tanh(y) * t)); and R1's double backward (the gradient w.r.t. w of
the squared input gradient). It also prints XLA's memory_analysis of the
compiled forward+backward program: `temp` bytes are what it allocates besides
its arguments and outputs (autodiff residuals such as im2col's patches are
temporaries of that program). Ratios are against the first --impls entry. The
channel count defaults to 256 (the 64 px networks are 512 wide) to keep the
run short on a 2-core CPU; --channels=512 measures the real width.
"""
import statistics
import time

from absl import flags
import jax
import jax.numpy as jnp

from fsig_jax.nn import conv
from fsig_jax.utils.cli import run_main

IMPLS = flags.DEFINE_string('impls', 'native,im2col,hybrid', 'comma-separated; the first is '
                            'the baseline of the ratios')
REPEATS = flags.DEFINE_integer('repeats', 3, 'timed calls per measurement (median)')
CHANNELS = flags.DEFINE_integer('channels', 256, 'input and output channels')
BATCH = flags.DEFINE_integer('batch', 4, 'batch size')
LAYERS = flags.DEFINE_string('layers', '', 'comma-separated subset of the layer names')
COND = flags.DEFINE_bool('cond', False, 'run each program inside a lax.cond branch, as '
                         "the engine's lazily regularised steps run (XLA's CPU compiler "
                         'treats convolutions there differently)')


def layers(c):
  """name -> (input shape, kernel size, fn(x, w, impl))."""
  n = BATCH.value
  return {
      's1_3x3_32px': ((n, 32, 32, c), 3, lambda x, w, i: conv.conv2d(x, w, padding=1, impl=i)),
      's1_3x3_64px': ((n, 64, 64, c), 3, lambda x, w, i: conv.conv2d(x, w, padding=1, impl=i)),
      's2_3x3_64px': ((n, 66, 66, c), 3, lambda x, w, i: conv.conv2d(x, w, stride=2, impl=i)),
      's2_1x1_64px': ((n, 64, 64, c), 1, lambda x, w, i: conv.conv2d(x, w, stride=2, impl=i)),
      'up2_3x3_32px': ((n, 32, 32, c), 3, lambda x, w, i: conv.conv_transpose_up2(x, w, impl=i)),
      's1_1x1_64px': ((n, 64, 64, c), 1, lambda x, w, i: conv.conv2d(x, w, impl=i)),
      # Four layers in a row (one kernel): what autodiff keeps for the backward
      # accumulates over layers (im2col: each layer's k*k-times patch tensor).
      'x4_3x3_64px': ((n, 64, 64, c), 3, _four_layers),
  }


def _four_layers(x, w, impl):
  for _ in range(4):
    x = jax.nn.leaky_relu(conv.conv2d(x, w, padding=1, impl=impl), 0.2)
  return x


def measure(shape, k, fn, impls):
  """{impl: {measure: value}}; the calls of the implementations alternate, so
  that a change in the machine's load hits all of them alike."""
  kx, kw, kt = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(kx, shape)
  w = jax.random.normal(kw, (k, k, shape[-1], CHANNELS.value)) / (k * shape[-1]) ** 0.5
  t = jax.random.normal(kt, jax.eval_shape(lambda x, w: fn(x, w, 'native'), x, w).shape)
  progs, out = {}, {}
  for impl in impls:
    loss = lambda x, w, impl=impl: jnp.sum(jnp.tanh(fn(x, w, impl)) * t)  # noqa: E731
    r1 = lambda x, w, loss=loss: jnp.sum(jnp.square(jax.grad(loss)(x, w)))  # noqa: E731
    compile_ = lambda f: jax.jit(_in_cond(f) if COND.value else f).lower(x, w).compile()  # noqa: E731
    progs[impl] = {'fwd_s': compile_(lambda x, w, impl=impl: fn(x, w, impl)),
                   'fwd_bwd_s': compile_(jax.value_and_grad(loss, (0, 1))),
                   'r1_s': compile_(jax.grad(r1, 1))}
    mem = progs[impl]['fwd_bwd_s'].memory_analysis()
    out[impl] = {'fwd_bwd_temp_mib': mem.temp_size_in_bytes / 2 ** 20 if mem else float('nan')}
  for m in ('fwd_s', 'fwd_bwd_s', 'r1_s'):
    times = {impl: [] for impl in impls}
    for rep in range(REPEATS.value + 1):  # the first round warms up
      for impl in impls:
        t0 = time.perf_counter()
        jax.block_until_ready(progs[impl][m](x, w))
        if rep:
          times[impl].append(time.perf_counter() - t0)
    for impl in impls:
      out[impl][m] = statistics.median(times[impl])
  return out


def _in_cond(f):
  """f(x, w) as the taken branch of a lax.cond (the other branch returns zeros)."""
  def zeros(x, w):
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(f, x, w))
  return lambda x, w: jax.lax.cond(jnp.isfinite(w[0, 0, 0, 0]), f, zeros, x, w)


def main(argv):
  del argv
  impls = IMPLS.value.split(',')
  table = layers(CHANNELS.value)
  names = LAYERS.value.split(',') if LAYERS.value else list(table)
  print(f'# conv_impl: {jax.devices()[0]}, jax {jax.__version__}, batch {BATCH.value}, '
        f'{CHANNELS.value} -> {CHANNELS.value} channels, median of {REPEATS.value}'
        f"{', every program inside a lax.cond branch' if COND.value else ''}\n")
  print('| layer (input) | impl | fwd s | fwd+bwd s | R1 double bwd s | fwd+bwd temp MiB | '
        f'ratios to {impls[0]}: fwd / fwd+bwd / R1 / temp |')
  print('|---|---|---|---|---|---|---|')
  for name in names:
    shape, k, fn = table[name]
    rows = measure(shape, k, fn, impls)
    base = rows[impls[0]]
    for i, r in rows.items():
      ratios = ' / '.join(f'{r[m] / base[m]:.2f}' if base[m] else 'n/a'
                          for m in ('fwd_s', 'fwd_bwd_s', 'r1_s', 'fwd_bwd_temp_mib'))
      print(f"| {name} {'x'.join(map(str, shape))} | {i} | {r['fwd_s']:.3f} | "
            f"{r['fwd_bwd_s']:.3f} | {r['r1_s']:.3f} | {r['fwd_bwd_temp_mib']:.0f} | {ratios} |",
            flush=True)


if __name__ == '__main__':
  run_main(main)
