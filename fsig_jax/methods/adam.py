"""AdAM: adaptation-aware kernel modulation (Zhao et al., NeurIPS 2022).

"Few-shot Image Generation via Adaptation-Aware Kernel Modulation" (Sec. 4)
adapts a source StyleGAN2 in two stages:

1. Importance probing (IP). Every kernel W of the source GAN is modulated by a
   rank-1 factor, W_hat = W * (1 + u v^T) (v over the output filters, u over
   the fan-in); only the modulation (and the biases) is trained briefly on the
   target, then the Fisher information of the modulation parameters measures,
   per filter, how much the target needs that filter.
2. Main adaptation. The source is adapted again from scratch: the most
   important filters keep their source weights frozen and adapt through their
   modulation only; the other filters are fine-tuned plainly, unmodulated.

Every detail below follows the official code (yunqing-me/AdAM, also shipped
in yunqing-me/RICK; files `gan_training/models/model_adam.py`,
`AdAM_importance_probing.py`, `AdAM_main_adaptation.py`,
`_bash_importance_probing.sh`, `_bash_main_adaptation.sh`):

* Modulated layers (model_adam.py). G: every mapping fc (`Generator.kml_fc`,
  `KML_fc`), every modulated conv (`ModulatedConv2d_kml`: the 4x4 `conv1`,
  `convs.*`, the ToRGBs) and the style affine of each (`kml_fc` inside
  `ModulatedConv2d_kml`). D: fromRGB and every ResBlock conv and skip
  (`ConvLayer_kml`, `ResBlock_kml`); the epilogue (`final_conv`,
  `final_linear`) is plain. u has the fan-in's size, v the output size, both
  `torch.randn(n) * 1e-7` (so the modulation starts as the identity up to
  1e-14, exactly the identity in float32). Biases, noise strengths and ToRGB
  biases get an additive `b_vector` (zeros; op/fused_act.py
  `FusedLeakyReLU_kml`: `bias + b_vector`).
* Probing (AdAM_importance_probing.py, `__main__` and `calculate_fisher`;
  _bash_importance_probing.sh: `--fisher_iter 500 --fisher_freq 500
  --num_batch_fisher 250`). G trains only its u/v/b vectors; D its epilogue
  (`'final'`) and its u/v/b vectors; the usual rosinality losses and lazy
  regularisers, batch 4. After 500 steps the Fisher is estimated on the EMA
  models (`g_ema`, `d_ema`, both `accumulate`d with 0.5 ** (32 / 10000); g_ema
  starts from the checkpoint's g_ema, d_ema from its d): one sample at a time,
  G: `g_nonsaturating_loss(d_ema(g_ema([z])))`, D: `d_logistic_loss(d_ema(x),
  d_ema(g_ema([z])))` for one real image x, squared gradients averaged over
  num_batch_fisher * batch = 1000 samples.
* Per-filter importance (AdAM_main_adaptation.py, "Step 3"): G synthesis convs
  above 4x4 (`convs.0..11`): mean(F_u) + F_v; their affines:
  (mean(F_u) + F_v + F_b) / 2 per output unit (= conv input channel); D
  ResBlock convs: (mean(F_u) + F_v + F_b) / 2, skips: mean(F_u) + F_v. Three
  pools (G convs, G affines, D), each thresholded at
  `np.percentile(pool, q=fisher_quantile)`; importance > threshold: important.
* Main adaptation (same file, requires_grad lists and the gradient-zeroing
  blocks in `train`; the modules are re-created, so u/v restart from their
  1e-7 init and only the probed Fisher carries over). Important filters: base
  weight (and bias) gradient zeroed, modulation trains; other filters: v (and
  b) set to zero and frozen, base weight trains. G trains `convs.*` (the
  synthesis convs above 4x4 with their affines) plus every u/v/b vector, so
  the mapping, the 4x4 conv, the ToRGBs and the constant input keep their
  base weights and adapt only through their modulation (the constant not at
  all). D trains everything but fromRGB's base weights. Babies: quantile 50,
  1500 iterations; AFHQ-Cat: 75, 2500; batch 4 (_bash_main_adaptation.sh).

Masks are applied to the gradients and to Adam's updates (`grad_transform`);
as they are fixed before the first step, this is exactly the official
gradient zeroing (Adam never sees a non-zero gradient for a frozen entry).

Deviations, each stated:
* Rank-1 layout (default; `official_layout=True` reproduces the official code).
  The official convs compute `torch.ger(u, v).view(out, in, k, k)`
  (model_adam.py `EqualConv2d_kml.forward` l. 207, `ModulatedConv2d_kml.forward`
  l. 458, at commit 6428e99), which re-reads the (in*k*k, out) outer product in
  memory order, so filter o is not modulated by v[o] and the per-filter
  decisions on v do not act on filter o. We implement the paper's
  W * (1 + u v^T) with v[o] scaling filter o (the affines are already so in
  the official `KML_fc`, l. 34), which is what the per-filter importance
  assumes.
* The official `KML_fc` scales the affine by 1 / sqrt(out_dim) (l. 28) where
  the source `EqualLinear` uses 1 / sqrt(in_dim) (l. 249), so its model at step
  0 is not the source for convs with fewer than 512 input channels. We keep
  the source's scale by default: the identity modulation reproduces the source
  exactly. `official_layout=True` applies both official choices: conv kernels
  (every 4-D kernel, both sides) are modulated by the memory-order reshape,
  and every modulated dense kernel (G's mapping fcs and style affines, all
  `KML_fc` officially; D's modulated layers are all convs) is multiplied by
  sqrt(in / out), so that our EqualDense's runtime 1 / sqrt(in) becomes the
  official 1 / sqrt(out) (the official mapping uses `KML_fc(style_dim,
  style_dim)`, where the factor is 1). The option is recorded in the method
  state (key 'official_layout', present only when on), so exports that rebuild
  the method from its name (`state_to_bundle`) fold the same way. The masks
  (v zeroed for unimportant filters, by index) are those of the official code
  in both layouts.
* `b_vector`s are not separate parameters: a zero-initialised additive
  `bias + b_vector` has the bias's gradient, and Adam moves it exactly as it
  would move the bias. Every bias and noise strength trains in both stages
  (the official code trains, per bias, either the base or its b_vector), so we
  train the biases themselves.
* The G EMA is of the effective (folded) weights, so the EMA generator and the
  exported model are plain StyleGAN2s; the official g_ema averages base and
  u, v separately (the product of averages). The probing EMA keeps base and
  u, v separately, as the official one.
* Probing latents are drawn from the run's key (the official code reads
  pre-generated `_noise/*.pt` files), its real images uniformly with
  horizontal flips from the target set (the official loader's
  RandomHorizontalFlip), and the probing run always flips its batches (the
  method does not see config.data.flip). The probing G EMA starts from the
  same u, v as the probed G (the official g_ema draws its own 1e-7 ones).
* Probing is a training phase of its own: `init` hands it to the trainer's
  `run_phase` (the same step, progress lines and checkpoints as the main run,
  under WORKDIR/phases/adam_probe), so a run killed during probing resumes
  probing where it stopped, and the probed Fisher is saved there once, so a
  resumed main run does not probe again.
"""
import functools
import json
import math
import os
from typing import Dict, List, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from fsig_jax.losses.adversarial import d_logistic
import fsig_jax.methods.fisher as fisher
import fsig_jax.methods.masks as masks
from fsig_jax.methods.base import Method, MethodInit, compose
from fsig_jax.models.functional import Models
from fsig_jax.utils.files import write_text
from fsig_jax.utils.trees import ema

MOD = 'adam'          # the modulation factors' key in state['G'] / state['D']
PROBE = 'adam_probe'  # the internal probing method
UV_INIT = 1e-7        # model_adam.py: torch.randn(n) * 1e-7 for u_vector and v_vector
LAYOUT = 'official_layout'  # in a method state: fold with the official layout and scale
POOLS = ('g_conv', 'g_fc', 'd')

Path = Tuple[str, ...]


# --------------------------------------------------------------------------
# Kernel modulation.

def modulated_kernels(side: str, net) -> List[Path]:
  """Paths of the kernels AdAM modulates: all of G's; D's but the 4x4 epilogue."""
  return sorted(p for p in traverse_util.flatten_dict(net)
                if p[-1] == 'kernel' and not (side == 'D' and p[0] == 'b4'))


@functools.partial(jax.jit, static_argnums=0)
def init_modulation(side: str, net, key: jax.Array):
  """{kernel path: {'u': (fan_in,), 'v': (out,)}} as a nested tree, N(0, 1) * 1e-7."""
  flat = traverse_util.flatten_dict(net)
  out = {}
  for i, path in enumerate(modulated_kernels(side, net)):
    shape = flat[path].shape
    ku, kv = jax.random.split(jax.random.fold_in(key, i))
    out[path + ('u',)] = jax.random.normal(ku, (math.prod(shape[:-1]),), jnp.float32) * UV_INIT
    out[path + ('v',)] = jax.random.normal(kv, (shape[-1],), jnp.float32) * UV_INIT
  return traverse_util.unflatten_dict(out)


def modulate(kernel: jax.Array, u: jax.Array, v: jax.Array,
             official_layout: bool = False) -> jax.Array:
  """The modulated kernel.

  Default: W * (1 + u v^T) for W of shape (..., out): u over the fan-in (...,
  flattened row-major), v over the output filters (paper Sec. 4; see the
  layout note).

  official_layout: model_adam.py's formulas. A conv kernel (kh, kw, in, out)
  is modulated by `torch.ger(u, v).view(out, in, kh, kw)` (l. 207, 458; the
  (in*kh*kw, out) outer product re-read in memory order as an OIHW kernel),
  transposed to our HWIO layout; a dense kernel (in, out) by u v^T as
  `KML_fc` (l. 34), times sqrt(in / out), `KML_fc`'s 1 / sqrt(out) scale (l.
  28) in place of our EqualDense's 1 / sqrt(in).
  """
  if official_layout and kernel.ndim == 4:
    kh, kw, cin, cout = kernel.shape
    hat = jnp.outer(u, v).reshape(cout, cin, kh, kw).transpose(2, 3, 1, 0)
    return kernel * (1 + hat).astype(kernel.dtype)
  out = kernel * (1 + jnp.outer(u, v).reshape(kernel.shape)).astype(kernel.dtype)
  if official_layout and kernel.ndim == 2:
    out = out * math.sqrt(kernel.shape[0] / kernel.shape[1])
  return out


@functools.partial(jax.jit, static_argnames=('official_layout',))
def fold(net, mod, official_layout: bool = False):
  """The network with every modulated kernel replaced by its `modulate`d one."""
  flat = traverse_util.flatten_dict(net)
  fm = traverse_util.flatten_dict(mod)
  for path in sorted({p[:-1] for p in fm}):  # sorted: the same program in every process
    flat[path] = modulate(flat[path], fm[path + ('u',)], fm[path + ('v',)], official_layout)
  return traverse_util.unflatten_dict(flat)


def effective_params(side, params, mstate):
  """`Method.effective_params`: the side's net with its modulation folded in,
  in the official layout when the method state says so (LAYOUT)."""
  del side
  return fold(params['net'], params[MOD], official_layout=LAYOUT in (mstate or {}))


def _layout_state(official_layout: bool):
  """The method-state entry that records the layout (absent for the default)."""
  return {LAYOUT: jnp.ones((), jnp.int32)} if official_layout else {}


# --------------------------------------------------------------------------
# Importance.

def _res(block: str) -> int:
  return int(block[1:])


def g_probed(net) -> List[Tuple[str, str]]:
  """G layers with filter decisions: synthesis convs above 4x4 (official `convs.*`)."""
  syn = net['synthesis']
  return [(b, c) for b in sorted(syn, key=_res) if _res(b) >= 8
          for c in ('conv0', 'conv1') if c in syn[b]]


def d_probed(net) -> List[Tuple[str, str]]:
  """D layers with filter decisions: each ResBlock's convs and skip (not fromRGB)."""
  return [(b, c) for b in sorted(net, key=_res, reverse=True) if _res(b) > 4
          for c in ('conv0', 'conv1', 'skip') if c in net[b]]


def filter_importance(fisher_g, fisher_d) -> Dict[str, Dict[str, jax.Array]]:
  """Per-filter importances from the Fisher of the probed G and D sides.

  Args:
    fisher_g, fisher_d: Fisher trees shaped like the sides {'net': ..., MOD: ...}.

  Returns:
    {'g_conv': {'b8.conv0': (out,)}, 'g_fc': {'b8.conv0': (in,)},
     'd': {'b16.conv0': (out,)}} (AdAM_main_adaptation.py, "Step 3").
  """
  g_conv, g_fc, d = {}, {}, {}
  syn_m, syn_n = fisher_g[MOD]['synthesis'], fisher_g['net']['synthesis']
  for b, c in g_probed(fisher_g['net']):
    conv = syn_m[b][c]['kernel']
    g_conv[f'{b}.{c}'] = jnp.mean(conv['u']) + conv['v']
    aff = syn_m[b][c]['affine']['kernel']
    g_fc[f'{b}.{c}'] = (jnp.mean(aff['u']) + aff['v'] + syn_n[b][c]['affine']['bias']) / 2
  for b, c in d_probed(fisher_d['net']):
    m = fisher_d[MOD][b][c]['kernel']
    uv = jnp.mean(m['u']) + m['v']
    d[f'{b}.{c}'] = uv if c == 'skip' else (uv + fisher_d['net'][b][c]['bias']) / 2
  return {'g_conv': g_conv, 'g_fc': g_fc, 'd': d}


def decide(pool: Dict[str, jax.Array], quantile: float):
  """({layer: important (bool per filter)}, threshold): importance >
  np.percentile(all of the pool, quantile) (linear interpolation, as numpy)."""
  cut = jnp.percentile(jnp.concatenate([v.ravel() for v in pool.values()]), quantile)
  return {k: v > cut for k, v in pool.items()}, cut


def _filter_vector(side: str, kernel_path: Path, important):
  """The per-filter 'important' vector of a kernel path, or None if unprobed."""
  if side == 'G':
    if kernel_path[0] != 'synthesis':
      return None
    layer = f'{kernel_path[1]}.{kernel_path[2]}'
    pool = {('kernel',): 'g_conv', ('affine', 'kernel'): 'g_fc'}.get(tuple(kernel_path[3:]))
  else:
    layer = f'{kernel_path[0]}.{kernel_path[1]}'
    pool = 'd' if tuple(kernel_path[2:]) == ('kernel',) else None
  if pool is None or layer not in important[pool]:
    return None
  return important[pool][layer]


def main_masks(side: str, net, mod, important):
  """The main adaptation's trainable mask {'net': ..., MOD: ...} (1 trains, 0 frozen).

  Probed kernels: 1 - important per filter (important base filters frozen);
  their v: important (the other filters unmodulated). Other G kernels and the
  constant input: frozen (only modulated); fromRGB's kernel: frozen; D's
  epilogue, every bias and noise strength, every u and other v: trained.
  """
  def net_leaf(path, x):
    names = masks.path_names(path)
    vec = _filter_vector(side, names, important) if names[-1] == 'kernel' else None
    if vec is not None:
      return 1 - jnp.asarray(vec, x.dtype)
    frozen = names[-1] in ('kernel', 'const') and not (side == 'D' and names[0] == 'b4')
    return jnp.asarray(0.0 if frozen else 1.0, x.dtype)

  def mod_leaf(path, x):
    names = masks.path_names(path)
    vec = _filter_vector(side, names[:-1], important) if names[-1] == 'v' else None
    return jnp.asarray(1.0, x.dtype) if vec is None else jnp.asarray(vec, x.dtype)

  return {'net': jax.tree_util.tree_map_with_path(net_leaf, net),
          MOD: jax.tree_util.tree_map_with_path(mod_leaf, mod)}


@functools.partial(jax.jit, static_argnames=('official_layout',))
def main_init(f_g, f_d, g_net, d_net, key, quantile, official_layout: bool = False):
  """Decisions from the probed Fisher and the main stage's masks and modulation.

  Returns:
    (method state {'mask', 'importance', 'cutline'}, G modulation, D modulation).
    The modulation is fresh (the official main script re-creates the modules),
    with v zeroed for the filters that are fine-tuned instead.
  """
  imp = filter_importance(f_g, f_d)
  important, cutline = {}, {}
  for pool in POOLS:
    important[pool], cutline[pool] = decide(imp[pool], quantile)
  k_g, k_d = jax.random.split(key)
  mask, mods = {}, []
  for side, net, k in (('G', g_net, k_g), ('D', d_net, k_d)):
    mod = init_modulation(side, net, k)
    mask[side] = main_masks(side, net, mod, important)
    mods.append(masks.apply_mask(mod, mask[side][MOD]))
  state = {'mask': mask, 'importance': imp, 'cutline': cutline, **_layout_state(official_layout)}
  return state, mods[0], mods[1]


def _mask_side(grads, mask):
  return {**grads, 'net': masks.apply_mask(grads['net'], mask['net']),
          MOD: masks.apply_mask(grads[MOD], mask[MOD])}


# --------------------------------------------------------------------------
# Importance probing.

def _probe_trains(side: str, names: Path) -> bool:
  """Probing trains the modulation, biases and noise strengths; D's epilogue."""
  if side == 'D' and names[0] == 'b4':
    return True
  return names[-1] not in ('kernel', 'const')


def probe_method(g_mod, d_mod, official_layout: bool = False) -> Method:
  """The probing stage as an engine method (official importance-probing run):
  base kernels frozen, modulation trained, and an EMA of both sides kept."""

  def init(ictx):
    b = ictx.bundle
    return MethodInit(
        state={'ema': {'G': {'net': b.nets['G_ema']['params'], MOD: g_mod},
                       'D': {'net': b.require('D')['params'], MOD: d_mod}},
               'beta': jnp.asarray(ictx.hp.ema_beta, jnp.float32),
               **_layout_state(official_layout)},
        g_extra={MOD: g_mod}, d_extra={MOD: d_mod})

  def grad_transform(side, grads, params, ms):
    keep = masks.tree_mask(grads['net'], lambda names: _probe_trains(side, names))
    return {**grads, 'net': masks.apply_mask(grads['net'], keep)}

  def update(uctx, ms):
    sides = {'G': uctx.g, 'D': uctx.d}
    return {**ms, 'ema': {s: ema(ms['ema'][s], {'net': p['net'], MOD: p[MOD]}, ms['beta'])
                          for s, p in sides.items()}}

  return Method(name=PROBE, init=init, grad_transform=grad_transform, update=update,
                effective_params=effective_params, architectures=('stylegan2',))


@functools.partial(jax.jit, static_argnames=('cfg', 'chunk', 'official_layout'))
def probe_fisher(cfg, g_side, d_side, g_buffers, zs, noise_keys, reals, chunk: int = 4,
                 official_layout: bool = False):
  """Per-sample Fisher of the modulated G and D (official `calculate_fisher`).

  Sample n: G loss softplus(-D(G(z_n))) (`g_nonsaturating_loss` on a batch of
  one, random noise, no mixing) w.r.t. G; D loss d_logistic(D(x_n), D(G(z_n)))
  w.r.t. D. Both come from one gradient of the sum: D is a constant in the G
  term, the fake image a constant in the D term.

  Returns:
    (Fisher of g_side, Fisher of d_side), each shaped like the side.
  """
  models = Models(cfg)

  def loss(p, x):
    z, noise_key, real = x
    g_net = fold(p['G']['net'], p['G'][MOD], official_layout)
    d_net = fold(p['D']['net'], p['D'][MOD], official_layout)
    logits = lambda net, img: models.disc(net, img, return_features=False)  # noqa: E731
    ws = models.broadcast(models.map(g_net, g_buffers, z[None]))
    fake = models.synth(g_net, g_buffers, ws, noise_key)
    g_loss = jnp.sum(jax.nn.softplus(-logits(jax.lax.stop_gradient(d_net), fake)))
    d_loss = d_logistic(logits(d_net, real[None]), logits(d_net, jax.lax.stop_gradient(fake)))
    return g_loss + d_loss

  f = fisher.mean_squared_grads(loss, {'G': g_side, 'D': d_side}, (zs, noise_keys, reals),
                                chunk)
  return f['G'], f['D']


def probe(ictx, steps: int, num_batch_fisher: int, chunk: int, key: jax.Array,
          official_layout: bool = False):
  """Runs importance probing as a training phase of the trainer (`ictx.run_phase`);
  returns the Fisher of the probed (EMA) G and D sides."""
  if ictx.run_phase is None:
    raise ValueError('adam: importance probing is a training run of its own and needs the '
                     "trainer's phase runner: adapt via fsig_jax.adapt(), launch/main.py or "
                     'engine.loop.train (or pass run_phase=engine.phases.runner() to init_state)')
  bundle, hp = ictx.bundle, ictx.hp
  k_g, k_d, k_state, k_data, k_z, k_n, k_x, k_f = jax.random.split(key, 8)
  g_mod = init_modulation('G', bundle.nets['G_ema']['params'], k_g)
  d_mod = init_modulation('D', bundle.require('D')['params'], k_d)
  images = np.asarray(ictx.images, np.float32)

  def finish(state):
    """The probed Fisher on the EMA models (official `calculate_fisher`)."""
    ema_sides = state['method'][PROBE]['ema']
    n = num_batch_fisher * hp.batch_size
    reals = jnp.asarray(images)[jax.random.randint(k_x, (n,), 0, images.shape[0])]
    flips = jax.random.bernoulli(k_f, 0.5, (n,))
    reals = jnp.where(flips[:, None, None, None], reals[:, :, ::-1], reals)
    zs = jax.random.normal(k_z, (n, bundle.config.z_dim), jnp.float32)
    f_g, f_d = probe_fisher(bundle.config, ema_sides['G'], ema_sides['D'], state['G_buffers'],
                            zs, jax.random.split(k_n, n), reals, chunk=min(chunk, n),
                            official_layout=official_layout)
    bad = [s for s, f in (('G', f_g), ('D', f_d))
           if not all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(f))]
    if bad:
      raise FloatingPointError(f'adam: the probed Fisher of {bad} is not finite; the probing '
                               'run diverged: lower hparams.lr or probe_steps')
    return {'G': f_g, 'D': f_d}

  fishers = ictx.run_phase(PROBE, compose(probe_method(g_mod, d_mod, official_layout)),
                           key=k_state, steps=steps,
                           data_seed=int(jax.random.randint(k_data, (), 0, 2 ** 31 - 1)),
                           finish=finish)
  return fishers['G'], fishers['D']


# --------------------------------------------------------------------------
# The method.

def _check_int(name: str, value, lo: int, official: str):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
    raise ValueError(f'adam: {name} must be an integer >= {lo} ({official}), got {value!r}')


def adam(fisher_quantile: float = 50.0, probe_steps: int = 500, num_batch_fisher: int = 250,
         chunk: int = 4, official_layout: bool = False) -> Method:
  """AdAM as a plug-in: importance probing at init, then masked modulated adaptation.

  Args:
    fisher_quantile: percentile of each importance pool above which filters
      are important (base frozen, modulated); official `--fisher_quantile`,
      Babies 50 (the argparse default), AFHQ-Cat 75.
    probe_steps: training steps of the probing stage (official `--fisher_iter
      500 --fisher_freq 500`).
    num_batch_fisher: batches of hp.batch_size single-sample gradients in the
      Fisher estimate (official `--num_batch_fisher 250` with batch 4: 1000).
    chunk: per-sample gradients computed together (speed / memory only).
    official_layout: False (default): the paper's per-filter W * (1 + u v^T)
      and the source's affine scale (the identity modulation is the source).
      True: model_adam.py's memory-order reshape `torch.ger(u, v).view(out,
      in, k, k)` for convs and `KML_fc`'s 1 / sqrt(out_dim) affine scale, to
      match the published numbers (see "Deviations"; `modulate`).

  Returns:
    The Method named 'adam'.
  """
  if isinstance(fisher_quantile, bool) or not isinstance(fisher_quantile, (int, float)) \
      or not 0 <= fisher_quantile <= 100:
    raise ValueError('adam: fisher_quantile is a percentile and must be in [0, 100] '
                     f'(official: Babies 50, AFHQ-Cat 75), got {fisher_quantile!r}')
  _check_int('probe_steps', probe_steps, 0, 'official 500')
  _check_int('num_batch_fisher', num_batch_fisher, 1, 'official 250')
  _check_int('chunk', chunk, 1, 'a speed / memory trade-off, e.g. 4')
  if not isinstance(official_layout, (bool, np.bool_)):
    raise ValueError('adam: official_layout must be True (model_adam.py\'s reshape and '
                     f'KML_fc scale) or False (the paper\'s form), got {official_layout!r}')
  official_layout = bool(official_layout)

  def init(ictx):
    if ictx.images is None:
      raise ValueError('adam needs the target images: importance probing trains on them '
                       '(pass images to init_state / adapt)')
    bundle = ictx.bundle
    k_probe, k_main = jax.random.split(ictx.key)
    f_g, f_d = probe(ictx, probe_steps, num_batch_fisher, chunk, k_probe, official_layout)
    g_net = bundle.nets.get('G', bundle.nets['G_ema'])['params']
    state, g_mod, d_mod = main_init(f_g, f_d, g_net, bundle.require('D')['params'], k_main,
                                    jnp.float32(fisher_quantile), official_layout)
    return MethodInit(state=state, g_extra={MOD: g_mod}, d_extra={MOD: d_mod})

  def grad_transform(side, grads, params, ms):
    return _mask_side(grads, ms['mask'][side])

  # StyleGAN2 only: the kernel modulation is defined on modulated convs and
  # their style affines.
  return Method(name='adam', init=init, grad_transform=grad_transform,
                effective_params=effective_params, report=report, architectures=('stylegan2',))


def report(ms, outdir: str) -> List[str]:
  """Writes `adam_importance.json`: thresholds and important filters per layer."""
  out = {'cutline': {k: float(v) for k, v in ms['cutline'].items()}, 'layers': {}}
  for pool in POOLS:
    cut = float(ms['cutline'][pool])
    out['layers'][pool] = {
        layer: {'filters': int(np.size(v)), 'important': int(np.sum(np.asarray(v) > cut))}
        for layer, v in ms['importance'][pool].items()}
  return [write_text(os.path.join(outdir, 'adam_importance.json'), json.dumps(out, indent=1))]
