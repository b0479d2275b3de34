"""fsig-jax's adaptation step against the PyTorch reference, back to back in one command.

  python benchmarks/compare_torch.py --rosinality=PATH/TO/stylegan2-pytorch
  python benchmarks/compare_torch.py --rosinality=PATH --resolutions=64,256 \
      --sample_resolution=256 --out=cmp.json --table=cmp.md          # on a GPU

Each side runs in its own subprocess (one per framework and resolution), so
neither sees the other's threads, allocator or imports, and prints: seconds per
step, GFLOP/s (and, on CPU, the fraction of that framework's conv and matmul
peaks measured in the same run), peak memory (CPU: peak RSS of the child from
`resource.getrusage`; GPU: `torch.cuda.max_memory_allocated` for torch and
`memory_stats()['peak_bytes_in_use']` for JAX, which also counts XLA's
compile-time autotuning buffers, so the JAX rows add the allocator peak right
after compiling and the step program's own size from `memory_analysis()`),
and the ratios ours/ref.

The reference is rosinality/stylegan2-pytorch (the base of CDC, DCL, RICK and
AdAM): its `model.Generator(size, 512, 8, channel_multiplier)` and
`model.Discriminator(size, channel_multiplier)` from a checkout the user
passes with `--rosinality` (never vendored; needs torch==2.13.0 on CPU). One
reference step follows its train.py `train()`:
  - D step, train.py lines 172-195: G frozen, `mixing_noise` (0.9), D on the
    fake and on the real batch, `d_logistic_loss` (lines 64-68), Adam step;
  - lazy R1, lines 201-218 (`d_r1_loss`, lines 71-78), only with --reg=lazy;
  - G step, lines 222-238: D frozen, fresh `mixing_noise`, `g_nonsaturating_loss`
    (lines 81-84), Adam step; plus, with --source_forward (default on), a
    no-grad forward of a frozen copy of the source G on the same latents, as
    CDC's train.py does before its G loss (fsig-jax's TGAN has no such pass,
    so the reference does that much more work);
  - lazy path length, lines 240-259 (`g_path_regularize`, lines 87-100), only
    with --reg=lazy;
  - `accumulate(g_ema, g, 0.5 ** (32 / 10000))`, lines 152 and 268;
  - `.item()` of the losses (lines 272-278), which syncs the device.
Adam is lr 0.002, betas (0, 0.99), with train.py's lazy-ratio correction of
lr and betas (lines 464-477 of its __main__) when --reg=lazy and none when off.
Ours is `fsig_jax.engine.step.make_train_step` with TGAN on a randomly
initialised rosinality-width StyleGAN2 (`rosinality_channels`), the same
batch, latents 512 and 8 mapping layers.

Regularisation (label printed with the table): --reg=off (default) disables
lazy R1 and path length on both sides (`hp.r1_gamma = hp.pl_weight = 0`; the
reference skips train.py lines 201-218 and 240-263); every timed step is the
same work, the time is the median step, and GFLOP/s use each side's FLOP count
of that step (torch: `torch.utils.flop_counter.FlopCounterMode`, convolutions
and matmuls; ours: XLA's cost analysis of the compiled step, every op; on GPU
of the lowered HLO, because the compiled GPU program's cuDNN convolutions are
custom calls that XLA does not count).
--reg=lazy times whole cycles of the lazy schedule on both sides (R1 every 16
steps, path length every 4; the timed steps are rounded up to a multiple of
16) and the time is the cycle's total over its steps; GFLOP/s are not reported
there (XLA counts both branches of each lazy `lax.cond`).

The rosinality `op` package JIT-compiles its CUDA extensions at import
(`torch.utils.cpp_extension.load` in op/fused_act.py and op/upfirdn2d.py).
With --torch_ops=native (the default) the torch child replaces `load` by a
stub before importing `op`, so nothing compiles, and uses the pure-PyTorch
paths that rosinality takes on CPU: `upfirdn2d_native` (op/upfirdn2d.py) and
the `F.leaky_relu(x + bias) * sqrt(2)` branch of `fused_leaky_relu`
(op/fused_act.py); on CUDA, where those functions would call the compiled ops,
the child points `op` and `model`'s names at the same native paths. It also
sets `op.conv2d_gradfix.enabled = False`, which is what that module falls back
to on torch >= 1.9 anyway (F.conv2d), without its warning on every conv.
--torch_ops=cuda imports `op` unpatched (compiles the CUDA ops; needs nvcc
and ninja).

`--conv_impls=im2col,hybrid` runs fsig-jax's side once per conv
implementation (fsig_jax/nn/conv.py; each its own child with $FSIG_CONV_IMPL
set, so each peak RSS is its own), and `--sides=jax` skips the reference (no
--rosinality needed): the JAX side's rows alone, e.g. to compare the conv
implementations' time and memory without the reference's minutes per step.

`--sample_resolution=R --sample_batch=N` also measures samples per second of
a G_ema forward (random noise, no truncation) at R px in both frameworks.
"""
import datetime
import importlib
import importlib.util
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time

from absl import flags

from fsig_jax.utils.cli import run_main
from fsig_jax.utils.files import write_text

ROSINALITY = flags.DEFINE_string(
    'rosinality', '', 'path of a checkout of github.com/rosinality/stylegan2-pytorch '
    '(the directory holding model.py and op/)')
RES = flags.DEFINE_string('resolutions', '64', 'comma-separated resolutions')
BATCH = flags.DEFINE_integer('batch', 4, 'batch size')
MULT = flags.DEFINE_integer('channel_multiplier', 2, 'rosinality channel multiplier')
STEPS = flags.DEFINE_integer('steps', 3, 'timed steps (rounded up to whole 16-step '
                             'cycles with --reg=lazy)')
WARMUP = flags.DEFINE_integer('warmup', 1, 'untimed steps first (ours compiles before them; '
                              'its first-step column adds the compile time)')
REG = flags.DEFINE_enum('reg', 'off', ['off', 'lazy'],
                        'off: no R1/path length on either side; lazy: whole lazy cycles')
SOURCE_FWD = flags.DEFINE_bool('source_forward', True, 'reference G step also runs a '
                               'no-grad forward of a frozen source G (as CDC train.py)')
DEVICE = flags.DEFINE_enum('device', 'auto', ['auto', 'cpu', 'cuda'],
                           'auto: cuda when torch sees a GPU, else cpu (JAX uses its default backend)')
THREADS = flags.DEFINE_integer('threads', 2, 'torch.set_num_threads on CPU (XLA uses all cores)')
TORCH_OPS = flags.DEFINE_enum('torch_ops', 'native', ['native', 'cuda'],
                              "native: rosinality's pure-PyTorch ops, nothing compiled; "
                              'cuda: its JIT-compiled CUDA extensions')
PEAKS = flags.DEFINE_bool('peaks', True, 'measure conv and matmul peaks in each child')
SAMPLE_RES = flags.DEFINE_integer('sample_resolution', 0, 'also time G_ema sampling at '
                                  'this resolution (0: off)')
SAMPLE_BATCH = flags.DEFINE_integer('sample_batch', 32, 'batch of the sampling benchmark')
SAMPLE_ITERS = flags.DEFINE_integer('sample_iters', 5, 'timed sampling calls')
CHILD_TIMEOUT = flags.DEFINE_integer('child_timeout', 1800, 'seconds before a child is killed')
OUT = flags.DEFINE_string('out', '', 'optional JSON file for the results')
TABLE = flags.DEFINE_string('table', '', 'optional file for the printed tables')
SIDES = flags.DEFINE_string('sides', 'torch,jax', 'comma-separated: torch (the reference), '
                            'jax (fsig-jax)')
CONV_IMPLS = flags.DEFINE_string('conv_impls', '', 'comma-separated fsig-jax conv '
                                 'implementations, one child each; empty: the default '
                                 '($FSIG_CONV_IMPL or the backend default)')
CHILD = flags.DEFINE_string('child', '', 'internal: JSON spec of one child run')

TORCH_PIN = 'torch==2.13.0'
RESULT = 'COMPARE_RESULT '


def check_inputs(path: str):
  """The one-line reason the comparison cannot run, or '' when it can."""
  if not path:
    return ('compare_torch needs the PyTorch reference: pass --rosinality=PATH, a checkout of '
            'https://github.com/rosinality/stylegan2-pytorch (git clone it; it is not vendored)')
  if not (os.path.isfile(os.path.join(path, 'model.py'))
          and os.path.isfile(os.path.join(path, 'op', 'upfirdn2d.py'))):
    return (f'--rosinality={path} is not a checkout of rosinality/stylegan2-pytorch (no model.py '
            'and op/upfirdn2d.py there): pass --rosinality=PATH of a clone of '
            'https://github.com/rosinality/stylegan2-pytorch')
  if importlib.util.find_spec('torch') is None:
    return (f'compare_torch needs PyTorch for the reference step: pip install {TORCH_PIN} '
            '(the CPU build; on a GPU machine use its CUDA torch)')
  return ''


# ----------------------------------------------------------------- helpers

def _peak_rss_bytes():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _best_gflops(fn, flop, reps):
  fn()  # warm-up (and compile)
  best = float('inf')
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t)
  return round(flop / best / 1e9, 1)


def _peak_shapes(gpu):
  """(batch, channels, size) of the 3x3 conv and n of the n^3 matmul used as peaks."""
  return ((32, 512, 32), 8192) if gpu else ((4, 512, 32), 2048)


def _lazy_steps(n):
  return -(-n // 16) * 16


# ------------------------------------------------------------- torch child

def _import_rosinality(path, ops, device):
  """rosinality's model module, with its CUDA ops stubbed unless ops == 'cuda'."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, path)
  if ops == 'native':
    import torch.utils.cpp_extension as cpp_ext  # pylint: disable=g-import-not-at-top

    class _NotCompiled:
      def __init__(self, name):
        self.name = name

      def __getattr__(self, attr):
        raise RuntimeError(f'rosinality op {self.name!r} was not compiled (--torch_ops=native); '
                           'a native path should have been used')

    cpp_ext.load = lambda name, *a, **k: _NotCompiled(name)
  import op  # pylint: disable=g-import-not-at-top
  import model  # pylint: disable=g-import-not-at-top
  op.conv2d_gradfix.enabled = False  # F.conv2d, as conv2d_gradfix does on torch >= 1.9
  if ops == 'native' and device != 'cpu':
    # `op.upfirdn2d` is the function (op/__init__.py shadows the submodule): take the modules.
    fused_act = importlib.import_module('op.fused_act')
    upfirdn_mod = importlib.import_module('op.upfirdn2d')

    def native_upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
      # op/upfirdn2d.py `upfirdn2d`, CPU branch, on any device.
      up = tuple(up) if isinstance(up, (tuple, list)) else (up, up)
      down = tuple(down) if isinstance(down, (tuple, list)) else (down, down)
      pad = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else tuple(pad)
      return upfirdn_mod.upfirdn2d_native(x, kernel, *up, *down, *pad)

    def native_fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=2 ** 0.5):
      # op/fused_act.py `fused_leaky_relu`, CPU branch, on any device.
      if bias is not None:
        x = x + bias.view(1, bias.shape[0], *([1] * (x.ndim - bias.ndim - 1)))
      return F.leaky_relu(x, negative_slope=0.2) * scale

    fused_act.fused_leaky_relu = native_fused_leaky_relu
    model.fused_leaky_relu = native_fused_leaky_relu
    upfirdn_mod.upfirdn2d = native_upfirdn2d
    model.upfirdn2d = native_upfirdn2d
  return model


def torch_child(spec):
  """Reference step timings in this process; returns the result dict."""
  import copy  # pylint: disable=g-import-not-at-top
  import math  # pylint: disable=g-import-not-at-top
  import random  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torch import autograd  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=g-import-not-at-top

  device = spec['device']
  gpu = device == 'cuda'
  if not gpu:
    torch.set_num_threads(spec['threads'])
  model = _import_rosinality(spec['rosinality'], spec['torch_ops'], device)
  torch.manual_seed(0)
  random.seed(0)
  res, batch, latent = spec['res'], spec['batch'], 512
  sync = torch.cuda.synchronize if gpu else (lambda: None)
  out = {'framework': 'torch', 'version': torch.__version__, 'res': res, 'device': device,
         'threads': torch.get_num_threads(), 'torch_ops': spec['torch_ops']}
  if gpu:
    out['device_name'] = torch.cuda.get_device_name(0)
    out['tf32'] = {'matmul': torch.backends.cuda.matmul.allow_tf32,
                   'cudnn': torch.backends.cudnn.allow_tf32}

  g = model.Generator(res, latent, 8, channel_multiplier=spec['mult']).to(device)
  d = model.Discriminator(res, channel_multiplier=spec['mult']).to(device)
  g_ema = copy.deepcopy(g).eval()
  g_source = copy.deepcopy(g).eval()
  for p in list(g_ema.parameters()) + list(g_source.parameters()):
    p.requires_grad = False
  lazy = spec['reg'] == 'lazy'
  g_ratio, d_ratio = (4 / 5, 16 / 17) if lazy else (1.0, 1.0)  # train.py __main__
  g_optim = torch.optim.Adam(g.parameters(), lr=0.002 * g_ratio, betas=(0.0, 0.99 ** g_ratio))
  d_optim = torch.optim.Adam(d.parameters(), lr=0.002 * d_ratio, betas=(0.0, 0.99 ** d_ratio))
  accum = 0.5 ** (32 / (10 * 1000))
  real_img = torch.rand(batch, 3, res, res, device=device) * 2 - 1
  state = {'mean_path_length': 0.0}

  def requires_grad(m, flag):
    for p in m.parameters():
      p.requires_grad = flag

  def mixing_noise(n):
    if random.random() < 0.9:
      return list(torch.randn(2, n, latent, device=device).unbind(0))
    return [torch.randn(n, latent, device=device)]

  def step(i, regularise):
    requires_grad(g, False)
    requires_grad(d, True)
    fake_img, _ = g(mixing_noise(batch))
    fake_pred, real_pred = d(fake_img), d(real_img)
    d_loss = F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()
    d.zero_grad()
    d_loss.backward()
    d_optim.step()
    if regularise and i % 16 == 0:
      real = real_img.detach().requires_grad_(True)
      pred = d(real)
      grad, = autograd.grad(outputs=pred.sum(), inputs=real, create_graph=True)
      r1 = grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()
      d.zero_grad()
      (10.0 / 2 * r1 * 16 + 0 * pred[0]).backward()
      d_optim.step()
    requires_grad(g, True)
    requires_grad(d, False)
    noise = mixing_noise(batch)
    fake_img, _ = g(noise)
    if spec['source_forward']:
      with torch.no_grad():
        g_source(noise)
    g_loss = F.softplus(-d(fake_img)).mean()
    g.zero_grad()
    g_loss.backward()
    g_optim.step()
    if regularise and i % 4 == 0:
      fake_img, latents = g(mixing_noise(max(1, batch // 2)), return_latents=True)
      pnoise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
      grad, = autograd.grad(outputs=(fake_img * pnoise).sum(), inputs=latents, create_graph=True)
      lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
      mean = state['mean_path_length']
      path_mean = mean + 0.01 * (lengths.mean() - mean)
      path_loss = (lengths - path_mean).pow(2).mean()
      g.zero_grad()
      (2.0 * 4 * path_loss + 0 * fake_img[0, 0, 0, 0]).backward()
      g_optim.step()
      state['mean_path_length'] = path_mean.detach()
    with torch.no_grad():
      for pe, pg in zip(g_ema.parameters(), g.parameters()):
        pe.mul_(accum).add_(pg, alpha=1 - accum)
    vals = (d_loss.item(), g_loss.item())
    sync()
    return vals

  def step_times():
    times = []
    for i in range(spec['warmup'] + spec['steps']):
      t = time.perf_counter()
      step(i, lazy)
      times.append(time.perf_counter() - t)
      print(f'step {i}: {times[-1]:.4f} s', flush=True)
    return times

  if spec['steps']:
    times = step_times()
    out.update(_summarise(times, spec))
    if gpu:
      out['peak_mem_bytes'] = torch.cuda.max_memory_allocated()
    if not lazy:
      with FlopCounterMode(display=False) as counter:
        step(1, False)
      out['gflop_per_step'] = round(counter.get_total_flops() / 1e9, 2)
      out['gflop_count'] = 'FlopCounterMode (conv + matmul)'
      out['gflops'] = round(out['gflop_per_step'] / out['step_s'], 1)

  if spec['peaks']:
    _guarded(out, 'peaks', _torch_peaks, torch, F, device, gpu, sync)
  if spec['sample']:
    del g, d, g_source, g_optim, d_optim  # free the training memory first
    if gpu:
      torch.cuda.empty_cache()
    _guarded(out, 'sample', _torch_sample, torch, g_ema, spec, device, sync)
  if not gpu:
    out['peak_mem_bytes'] = _peak_rss_bytes()
  return out


def _guarded(out, what, fn, *args):
  """fn(*args) -> dict merged into out; an exception is recorded, not raised,
  so the step timings already measured are still reported."""
  try:
    out.update(fn(*args))
  except Exception as e:  # pylint: disable=broad-except
    out[f'{what}_error'] = f'{type(e).__name__}: {e}'[:300]
    print(f'{what} failed: {out[what + "_error"]}', flush=True)


def _torch_peaks(torch, F, device, gpu, sync):
  """torch's 3x3 conv forward and matmul rates (best of a few), in GFLOP/s."""
  (n, c, s), m = _peak_shapes(gpu)
  x = torch.randn(n, c, s, s, device=device)
  w = torch.randn(c, c, 3, 3, device=device)
  a = torch.randn(m, m, device=device)

  def conv():
    F.conv2d(x, w, padding=1)
    sync()

  def mm():
    a @ a  # pylint: disable=pointless-statement
    sync()

  reps = 10 if gpu else 3
  with torch.no_grad():
    return {'peak_conv_gflops': _best_gflops(conv, 2 * n * s * s * c * c * 9, reps),
            'peak_matmul_gflops': _best_gflops(mm, 2 * m ** 3, reps),
            'peak_shapes': f'conv3x3 {n}x{c}x{s}x{s} -> {c}; matmul {m}^3'}


def _torch_sample(torch, g_ema, spec, device, sync):
  """Samples per second of rosinality's G_ema forward (random noise, no truncation)."""
  sb = spec['sample_batch']
  with torch.no_grad():
    z = torch.randn(sb, 512, device=device)
    g_ema([z])
    sync()
    t = time.perf_counter()
    for _ in range(spec['sample_iters']):
      g_ema([z])
    sync()
    rate = sb * spec['sample_iters'] / (time.perf_counter() - t)
  return {'samples_per_s': round(rate, 1), 'sample_batch': sb}


def _summarise(times, spec):
  timed = times[spec['warmup']:]
  lazy = spec['reg'] == 'lazy'
  return {'first_step_s': round(times[0], 2),
          'step_s': round(sum(timed) / len(timed) if lazy else statistics.median(timed), 4),
          'step_min_s': round(min(timed), 4), 'step_max_s': round(max(timed), 4),
          'timed_steps': len(timed)}


# --------------------------------------------------------------- JAX child

def jax_child(spec):
  """fsig-jax step timings in this process; returns the result dict."""
  import jax  # pylint: disable=g-import-not-at-top
  import adapt_step  # pylint: disable=g-import-not-at-top
  from fsig_jax.models.functional import Models  # pylint: disable=g-import-not-at-top
  from fsig_jax.engine.hparams import default_hparams  # pylint: disable=g-import-not-at-top
  from fsig_jax.models.bundle import init_bundle  # pylint: disable=g-import-not-at-top
  from fsig_jax.nn import conv as fconv  # pylint: disable=g-import-not-at-top
  from fsig_jax.utils.memory import trim_after_compiles  # pylint: disable=g-import-not-at-top

  trim_after_compiles()  # as every fsig-jax run does (fsig_jax.run.Run)
  dev = jax.devices()[0]
  gpu = dev.platform == 'gpu'
  res, batch = spec['res'], spec['batch']
  out = {'framework': 'fsig-jax', 'version': jax.__version__, 'res': res,
         'device': str(dev), 'device_kind': dev.device_kind, 'conv_impl': fconv.default_impl(),
         'matmul_precision': str(getattr(jax.config, 'jax_default_matmul_precision', '?'))}
  cfg = adapt_step.config(res, spec['mult'])
  lazy = spec['reg'] == 'lazy'
  hp = default_hparams()
  if not lazy:
    hp.r1_gamma, hp.pl_weight = 0.0, 0.0

  def mem_peak():
    stats = dev.memory_stats() or {}
    return stats.get('peak_bytes_in_use')

  if spec['steps']:
    built = adapt_step.build(res, 'tgan', batch=batch, mult=spec['mult'], hp=hp)
    state, real = built.state, built.real
    t0 = time.perf_counter()
    lowered = built.step.lower(state, real, built.extra)
    compiled = lowered.compile()
    out['compile_s'] = round(time.perf_counter() - t0, 1)
    print(f'compiled in {out["compile_s"]} s', flush=True)
    # On GPU the compiled program's convolutions are cuDNN custom calls, which
    # XLA's cost analysis does not count (an H200 run printed 5.3 GFLOP for a
    # 1,536 GFLOP step): there the lowered HLO's count is the step's work.
    flop = _xla_flops(lowered if gpu else compiled)
    out['xla_gflop_compiled'] = round(_xla_flops(compiled) / 1e9, 2)
    out['xla_gflop_lowered'] = round(_xla_flops(lowered) / 1e9, 2)
    mem = compiled.memory_analysis()
    if mem is not None:  # arguments + outputs - donated + temporaries of the step program
      out['step_program_bytes'] = (mem.argument_size_in_bytes + mem.output_size_in_bytes
                                   - mem.alias_size_in_bytes + mem.temp_size_in_bytes)
    if gpu:  # the allocator peak so far: model, state and compile-time autotuning
      out['peak_mem_after_compile_bytes'] = mem_peak()
    times = []
    for _ in range(spec['warmup'] + spec['steps']):
      t = time.perf_counter()
      state, metrics = compiled(state, real, built.extra)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - t)
      print(f'step {len(times) - 1}: {times[-1]:.4f} s', flush=True)
    out.update(_summarise(times, spec))
    out['first_step_s'] = round(out['first_step_s'] + out['compile_s'], 2)  # incl. compile
    if gpu:
      out['peak_mem_bytes'] = mem_peak()
    if not lazy:
      out['gflop_per_step'] = round(flop / 1e9, 2)
      out['gflop_count'] = ('XLA cost analysis of the lowered HLO (all ops)' if gpu else
                            'XLA cost analysis of the compiled program (all ops)')
      out['gflops'] = round(out['gflop_per_step'] / out['step_s'], 1)
    del state, compiled, lowered, built

  if spec['peaks']:
    _guarded(out, 'peaks', _jax_peaks, jax, fconv, gpu)
  if spec['sample']:
    bundle = init_bundle(cfg, jax.random.PRNGKey(0))  # the step's models (adapt_step.build)
    _guarded(out, 'sample', _jax_sample, jax, Models(cfg), bundle.nets['G_ema'], spec)
  if not gpu:
    out['peak_mem_bytes'] = _peak_rss_bytes()
  return out


def _xla_flops(stage):
  cost = stage.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get('flops', float('nan')))


def _jax_peaks(jax, fconv, gpu):
  """XLA's native 3x3 conv forward, fsig-jax's im2col conv (CPU) and matmul rates."""
  (n, c, s), m = _peak_shapes(gpu)
  x = jax.random.normal(jax.random.PRNGKey(3), (n, s, s, c))
  w = jax.random.normal(jax.random.PRNGKey(4), (3, 3, c, c))
  a = jax.random.normal(jax.random.PRNGKey(5), (m, m))
  flop, reps = 2 * n * s * s * c * c * 9, (10 if gpu else 3)
  native = jax.jit(lambda x, w: fconv.conv2d(x, w, padding=1, impl='native'))
  im2col = jax.jit(lambda x, w: fconv.conv2d(x, w, padding=1, impl='im2col'))
  mm = jax.jit(lambda a: a @ a)
  out = {'peak_conv_gflops': _best_gflops(lambda: native(x, w).block_until_ready(), flop, reps)}
  if not gpu:
    out['peak_im2col_conv_gflops'] = _best_gflops(
        lambda: im2col(x, w).block_until_ready(), flop, reps)
  out['peak_matmul_gflops'] = _best_gflops(lambda: mm(a).block_until_ready(), 2 * m ** 3, reps)
  out['peak_shapes'] = f'conv3x3 {n}x{c}x{s}x{s} -> {c}; matmul {m}^3'
  return out


def _jax_sample(jax, models, g_ema, spec):
  """Samples per second of fsig-jax's jitted G_ema forward (random noise, no truncation)."""
  sb = spec['sample_batch']

  @jax.jit
  def sample(params, buffers, z, key):
    return models.synth(params, buffers, models.broadcast(models.map(params, buffers, z)), key)

  z = jax.random.normal(jax.random.PRNGKey(6), (sb, models.cfg.z_dim))
  sample(g_ema['params'], g_ema['buffers'], z, jax.random.PRNGKey(7)).block_until_ready()
  t = time.perf_counter()
  for i in range(spec['sample_iters']):
    img = sample(g_ema['params'], g_ema['buffers'], z, jax.random.PRNGKey(8 + i))
  img.block_until_ready()
  rate = sb * spec['sample_iters'] / (time.perf_counter() - t)
  return {'samples_per_s': round(rate, 1), 'sample_batch': sb}


# ------------------------------------------------------------------ parent

_ACTIVE = []  # the running child, killed with the parent (e.g. by `timeout`)


def _on_term(signum, frame):
  del frame
  for proc in _ACTIVE:
    proc.kill()
  print(f'compare_torch: stopped by signal {signum}; the files hold the rows finished so far',
        file=sys.stderr, flush=True)
  os._exit(128 + signum)  # pylint: disable=protected-access


def _run_child(spec, label):
  """Runs one child, streaming its output; returns its result dict or an error dict."""
  cmd = [sys.executable, os.path.abspath(__file__), '--child=' + json.dumps(spec)]
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  if spec['framework'] == 'jax' and spec['device'] == 'cpu':
    env.setdefault('JAX_PLATFORMS', 'cpu')
  if spec.get('conv_impl'):
    env['FSIG_CONV_IMPL'] = spec['conv_impl']
  print(f'--- {label}', flush=True)
  t0 = time.perf_counter()
  result = None
  with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        env=env) as proc:
    _ACTIVE[:] = [proc]
    try:
      for line in proc.stdout:
        if line.startswith(RESULT):
          result = json.loads(line[len(RESULT):])
        else:
          print(f'  [{label}] {line}', end='', flush=True)
        if time.perf_counter() - t0 > CHILD_TIMEOUT.value:
          proc.kill()
          break
      proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      proc.kill()
  wall = round(time.perf_counter() - t0, 1)
  if result is None:
    return {'framework': spec['framework'], 'res': spec['res'], 'error':
            f'child exited with {proc.returncode} after {wall} s (see its output above)'}
  result['child_wall_s'] = wall
  return result


def _gb(b):
  return f'{b / 2 ** 30:.2f}' if isinstance(b, (int, float)) and b else 'n/a'


def _fmt(v, spec='{:.3f}'):
  return spec.format(v) if isinstance(v, (int, float)) else 'n/a'


def render(rows, header_lines, gpu):
  """The markdown tables: per-side rows, ratios, peaks and sampling."""
  lines = list(header_lines) + ['']
  mem_name = 'peak GPU mem GiB' if gpu else 'peak RSS GiB'
  lines += [f'| px | side | s/step | first step s (ours: + compile) | GFLOP/step | GFLOP/s | % conv peak | '
            f'% matmul peak | {mem_name} |', '|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    if 'error' in r:
      lines.append(f"| {r['res']} | {r['framework']} | error: {r['error']} |||||||")
      continue
    if 'step_s' not in r:
      continue
    gf = r.get('gflops')
    conv_pct = _fmt(100 * gf / r['peak_conv_gflops'], '{:.0f}%') \
        if gf and r.get('peak_conv_gflops') else 'n/a'
    mm_pct = _fmt(100 * gf / r['peak_matmul_gflops'], '{:.0f}%') \
        if gf and r.get('peak_matmul_gflops') else 'n/a'
    name = ('reference (torch)' if r['framework'] == 'torch' else
            f"fsig-jax TGAN ({r.get('conv_impl', '?')} conv)")
    lines.append(f"| {r['res']} | {name} | {_fmt(r['step_s'], '{:.4g}')} | "
                 f"{_fmt(r['first_step_s'], '{:.2f}')} | {_fmt(r.get('gflop_per_step'), '{:.1f}')} | "
                 f"{_fmt(gf, '{:.1f}')} | {conv_pct} | {mm_pct} | {_gb(r.get('peak_mem_bytes'))} |")
  # Ratios against the reference, or, with --sides=jax, against the first conv impl.
  lines += ['', '| px | ours | baseline | ours/baseline time | speed-up (baseline/ours) | '
            'ours/baseline memory |', '|---|---|---|---|---|---|']
  for res in sorted({r['res'] for r in rows}):
    timed = [r for r in rows if r['res'] == res and 'step_s' in r]
    ours = [r for r in timed if r['framework'] == 'fsig-jax']
    ref = [r for r in timed if r['framework'] == 'torch']
    t = ref[0] if ref else (ours.pop(0) if len(ours) > 1 else None)
    for j in ours if t else ():
      mem = (j['peak_mem_bytes'] / t['peak_mem_bytes']
             if j.get('peak_mem_bytes') and t.get('peak_mem_bytes') else None)
      lines.append(f"| {res} | {j.get('conv_impl')} conv | "
                   f"{'torch' if ref else str(t.get('conv_impl')) + ' conv'} | "
                   f"{j['step_s'] / t['step_s']:.2f} | {t['step_s'] / j['step_s']:.2f}x | "
                   f"{_fmt(mem, '{:.2f}')} |")
  if gpu:
    lines.append('- GPU memory: torch `max_memory_allocated` vs JAX `peak_bytes_in_use`; the latter '
                 "also holds XLA's compile-time autotuning buffers (compare the allocator peak "
                 'after compiling, below)')
  for r in rows:
    if r.get('step_program_bytes'):
      extra = (f", allocator peak after compiling, before any step: "
               f"{_gb(r['peak_mem_after_compile_bytes'])} GiB" if r.get('peak_mem_after_compile_bytes') else '')
      lines.append(f"- {r['res']} px, fsig-jax ({r.get('conv_impl')} conv): the compiled step program needs "
                   f"{_gb(r['step_program_bytes'])} GiB (XLA memory_analysis: arguments + outputs - "
                   f"donated + temporaries){extra}")
  peaks = [r for r in rows if r.get('peak_conv_gflops')]
  if peaks:
    lines += ['', '| px (child) | side | conv 3x3 GFLOP/s | im2col conv GFLOP/s | matmul GFLOP/s | shapes |',
              '|---|---|---|---|---|---|']
    for r in peaks:
      lines.append(f"| {r['res']} | {r['framework']} | {r['peak_conv_gflops']} | "
                   f"{r.get('peak_im2col_conv_gflops', 'n/a')} | {r['peak_matmul_gflops']} | "
                   f"{r['peak_shapes']} |")
  samples = [r for r in rows if r.get('samples_per_s')]
  if samples:
    lines += ['', '| px | side | batch | samples/s (G_ema forward) |', '|---|---|---|---|']
    for r in samples:
      lines.append(f"| {r['res']} | {r['framework']} | {r['sample_batch']} | {r['samples_per_s']} |")
  return '\n'.join(lines)


def main(argv):
  del argv
  if CHILD.value:
    spec = json.loads(CHILD.value)
    result = (torch_child if spec['framework'] == 'torch' else jax_child)(spec)
    print(RESULT + json.dumps(result), flush=True)
    return
  sides = [x for x in SIDES.value.split(',') if x]
  if not sides or set(sides) - {'torch', 'jax'}:
    print(f'--sides={SIDES.value}: pass torch, jax or torch,jax', file=sys.stderr)
    sys.exit(2)
  path = os.path.abspath(os.path.expanduser(ROSINALITY.value)) if ROSINALITY.value else ''
  problem = check_inputs(path) if 'torch' in sides else ''
  if problem:
    print(problem, file=sys.stderr)
    sys.exit(2)
  signal.signal(signal.SIGTERM, _on_term)
  device = DEVICE.value
  if device == 'auto':
    probe = subprocess.run([sys.executable, '-c', 'import torch; print(torch.cuda.is_available())'],
                           capture_output=True, text=True, check=False)
    device = 'cuda' if probe.stdout.strip() == 'True' else 'cpu'
  gpu = device == 'cuda'
  resolutions = [int(r) for r in RES.value.split(',') if r]
  steps = _lazy_steps(STEPS.value) if REG.value == 'lazy' else STEPS.value
  base = {'rosinality': path, 'batch': BATCH.value, 'mult': MULT.value, 'steps': steps,
          'warmup': WARMUP.value, 'reg': REG.value, 'source_forward': SOURCE_FWD.value,
          'device': device, 'threads': THREADS.value, 'torch_ops': TORCH_OPS.value,
          'peaks': PEAKS.value, 'sample_batch': SAMPLE_BATCH.value,
          'sample_iters': SAMPLE_ITERS.value}
  jobs = [(res, res == SAMPLE_RES.value, steps) for res in resolutions]
  if SAMPLE_RES.value and SAMPLE_RES.value not in resolutions:
    jobs.append((SAMPLE_RES.value, True, 0))
  reg_label = ('regularisation OFF on both sides (no lazy R1, no path length); s/step = median '
               'timed step' if REG.value == 'off' else
               'whole lazy cycles on both sides (R1 every 16, path length every 4); s/step = '
               'cycle total / steps')
  header = [
      f'# compare_torch: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, '
      f'{platform.node()}, {os.cpu_count()} CPUs, device {device}, load average at start '
      f'{os.getloadavg()[0]:.1f}',
      '',
      '    ' + ' '.join(['python'] +
                      [a for a in sys.argv if not a.startswith('--child=')]),
      '',
      (f'- reference: rosinality/stylegan2-pytorch Generator/Discriminator, torch ops '
       f'{TORCH_OPS.value}' + (f', {THREADS.value} torch threads' if not gpu else '') +
       f"; G step {'with' if SOURCE_FWD.value else 'without'} a no-grad source-G forward"
       if 'torch' in sides else '- reference: not run (--sides=jax)'),
      f'- ours: fsig-jax make_train_step, TGAN; batch {BATCH.value}, channel multiplier '
      f'{MULT.value}, {WARMUP.value} warm-up + {steps} timed steps',
      f'- {reg_label}',
      '- GFLOP/step: torch counts conv + matmul (FlopCounterMode), ours every op (XLA cost '
      'analysis); % of peak against that framework\'s own peaks below (same run)',
  ]
  rows = []
  children = ([('torch', None)] if 'torch' in sides else []) + (
      [('jax', impl or None) for impl in CONV_IMPLS.value.split(',')] if 'jax' in sides else [])
  for res, sample, n in jobs:
    for fw, impl in children:
      spec = dict(base, framework=fw, res=res, sample=sample, steps=n, conv_impl=impl)
      rows.append(_run_child(spec, f"{fw} {res}px{' ' + impl if impl else ''}"))
      print('  ' + json.dumps(rows[-1]), flush=True)
      dev_lines = sorted({f"- {r['framework']} {r['version']} on {r.get('device_name') or r['device']}"
                          + (f", tf32 {r['tf32']}" if r.get('tf32') else '')
                          + (f", conv impl {r['conv_impl']}, default matmul precision "
                             f"{r['matmul_precision']}" if r.get('conv_impl') else '')
                          for r in rows if 'version' in r})
      table = render(rows, header + dev_lines, gpu)
      if OUT.value:
        write_text(OUT.value, json.dumps({'header': header, 'rows': rows}, indent=2),
                   setting='--out')
      if TABLE.value:
        write_text(TABLE.value, table + '\n', setting='--table')
  print()
  print(table, flush=True)
  if any('error' in r for r in rows):
    sys.exit(1)


if __name__ == '__main__':
  run_main(main)
