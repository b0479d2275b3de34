"""RICK: filter-level knowledge truncation by Fisher information.

Zhao et al., CVPR 2023, "Exploring Incompatible Knowledge Transfer in Few-shot
Image Generation" (Sec. 4): during adaptation, the importance of every filter
for the target is estimated from the Fisher information of the GAN loss;
filters of high importance are frozen (their knowledge is kept), filters of
the lowest importance are pruned (zeroed: "incompatible knowledge" removed),
the rest are fine-tuned. Importance is re-estimated periodically, and pruned
filters stay pruned.

Every detail below follows the official code (yunqing-me/RICK,
train_dynamic_update_prune.py, "estimate fisher" / "Screen high FIM Filters" /
"dynamic filter-adaptation" blocks):

* Fisher: per image (batch 1), squared gradients summed over num_fisher_img
  latents, one per `_noise/000j.pt` file (each holds a single (1, 512)
  latent: read with fsig_jax.convert.torch_file), with the first real image
  of each of num_fisher_img target batches; the official division by
  num_fisher_img * batch only scales the Fisher, which the percentile
  thresholds ignore (we average over the images). G: `g_nonsaturating_loss(d_ema(g_ema(z)))`
  w.r.t. the EMA generator; D: `d_logistic_loss(d_ema(x), d_ema(g_ema(z)))`
  for one real image x and the same fake, w.r.t. the EMA discriminator (an
  EMA of D kept with the generator's EMA rate; method state here). The
  latents are fixed for the whole run (the `_noise/000j.pt` files); the real
  images are drawn afresh from the target set at each estimate.
* Per-filter importance: G synthesis conv weight, mean over all axes but the
  output filter; G modulation affine, (mean of its weight over the style
  axis + its bias) / 2 per modulated input channel; D ResBlock convs,
  (mean of the weight over all but the output filter + bias) / 2, D skip
  convs the weight mean alone. Only the synthesis convs above 4x4 in G
  (rosinality `convs.*`; not the 4x4 `conv1`, the ToRGBs, the mapping) and the
  ResBlocks in D (not fromRGB, not the epilogue) are screened.
* Thresholds: `np.percentile` (linear interpolation) over three pools: G conv
  filters, G modulation channels, D filters. importance > q(fisher_quantile):
  frozen; <= q(prune_quantile): pruned (D skip: < q(prune_quantile)); the rest
  fine-tuned. Frozen sets are replaced at each estimate, pruned sets united.
* ProGAN (the paper's second architecture, fsig_jax.models.progan): the same
  rules over its layers of the same names (synthesis convs above 4x4, D
  blocks above 4x4); it has no modulation, so the G FC pool is empty.
* What trains at all: G only its `convs.*` (our synthesis b8.. conv0/conv1:
  kernel, bias, noise strength, modulation affine); D its ResBlocks and the
  epilogue (`final_conv`, `final_linear`), not fromRGB. During the first
  warmup_iter steps only the D epilogue trains and G not at all; importance is
  estimated at warmup_iter and every fisher_freq steps after.

The official loop zeroes the gradients of frozen / pruned filters before
Adam's step; with its beta1 = 0 Adam keeps no momentum, so a zero gradient
moves nothing and frozen filters stay put there too. Pruned weights are
re-zeroed there only before the next step; here they are zeroed as soon as a
decision is made, so a pruned filter is exactly zero at every step (a
deviation that makes the paper's statement exact).

Adam after the warm-up (`late_start`): in the official code the G convs and D
ResBlocks get no gradient during warm-up, so torch's Adam starts each of them
at its own step 1 when it first trains. The engine does the same for RICK
(engine.state.late_start: one Adam step count per parameter, started at its
first non-zero gradient); with one shared count their first updates after a
250-step warm-up would be about 10x the learning rate. The official loop also
skips G's path-length regularisation during the warm-up
(`if g_regularize and i >= args.warmup_iter`), so its running mean starts
after it: here too (`g_reg_active`).
"""
import os
from typing import Dict, List, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from fsig_jax.losses.adversarial import d_logistic
import fsig_jax.methods.fisher as fisher
import fsig_jax.methods.masks as masks
from fsig_jax.methods.base import Method, MethodInit
from fsig_jax.utils.files import write_text
from fsig_jax.utils.trees import ema

Layer = Tuple[str, str]  # (block, layer), e.g. ('b8', 'conv0')


def _res(block: str) -> int:
  return int(block[1:])


def g_layers(g_params) -> List[Layer]:
  """Screened G layers: the synthesis convs above 4x4 (rosinality `convs.*`)."""
  syn = g_params['synthesis']
  return [(b, c) for b in sorted(syn, key=_res) if _res(b) >= 8
          for c in ('conv0', 'conv1') if c in syn[b]]


def d_layers(d_params) -> List[Layer]:
  """Screened D layers: each ResBlock's two convs and its skip (not fromRGB)."""
  return [(b, c) for b in sorted(d_params, key=_res, reverse=True) if _res(b) > 4
          for c in ('conv0', 'conv1', 'skip') if c in d_params[b]]


def _filter_mean(kernel):
  """Mean over every axis but the last (the output filter); (k, k, in, out) -> (out,)."""
  return jnp.mean(kernel, axis=tuple(range(kernel.ndim - 1)))


def filter_importance(fisher_g, fisher_d) -> Dict[str, Dict[Layer, jax.Array]]:
  """Per-filter importances, in the three pools the official code thresholds.

  Returns {'g_conv': {layer: (out,)}, 'g_fc': {layer: (in,)}, 'd': {layer: (out,)}}.
  """
  syn = fisher_g['synthesis']
  g_conv, g_fc, d = {}, {}, {}
  for b, c in g_layers(fisher_g):
    g_conv[(b, c)] = _filter_mean(syn[b][c]['kernel'])
    if 'affine' in syn[b][c]:  # StyleGAN2's modulation (a ProGAN has none)
      aff = syn[b][c]['affine']
      g_fc[(b, c)] = (jnp.mean(aff['kernel'], axis=0) + aff['bias']) / 2
  for b, c in d_layers(fisher_d):
    layer = fisher_d[b][c]
    w = _filter_mean(layer['kernel'])
    d[(b, c)] = w if c == 'skip' else (w + layer['bias']) / 2
  return {'g_conv': g_conv, 'g_fc': g_fc, 'd': d}


def decide(pool: Dict[Layer, jax.Array], fisher_quantile: float, prune_quantile: float):
  """Freeze / prune decisions of one pool: ({layer: bool (n,)}, {layer: bool (n,)}).

  Frozen: importance > percentile(fisher_quantile); pruned: importance <=
  percentile(prune_quantile), or < for D skip convs (as the official code).
  """
  pooled = jnp.concatenate([v.ravel() for v in pool.values()])
  cut = jnp.percentile(pooled, fisher_quantile)
  line = jnp.percentile(pooled, prune_quantile)
  freeze = {k: v > cut for k, v in pool.items()}
  prune = {k: (v < line) if k[1] == 'skip' else (v <= line) for k, v in pool.items()}
  return freeze, prune


def _per_filter_tree(params, side: str, g_conv=None, g_fc=None, d=None):
  """A tree like `params` whose screened leaves hold the per-filter vector given
  for their layer (float 0/1) and every other leaf a scalar 0."""
  def leaf(path, x):
    names = masks.path_names(path)
    vec = None
    if side == 'G' and names[0] == 'synthesis' and (names[1], names[2]) in g_conv:
      layer = (names[1], names[2])
      if names[3:] == ('kernel',):
        vec = g_conv[layer]
      elif names[3] == 'affine' and layer in g_fc:
        vec = g_fc[layer]
    elif side == 'D' and (names[0], names[1]) in d and names[2] in ('kernel', 'bias'):
      vec = d[(names[0], names[1])]
    if vec is None:
      return jnp.zeros((), x.dtype)
    return jnp.asarray(vec, x.dtype)
  return jax.tree_util.tree_map_with_path(leaf, params)


def history_rows(g_params, d_params) -> List[Tuple[str, str, Tuple[str, ...]]]:
  """(plot row name, side, path of the mask leaf it summarises) per screened layer."""
  rows = []
  for b, c in g_layers(g_params):
    rows.append((f'G.{b}.{c}.conv', 'G', ('synthesis', b, c, 'kernel')))
    if 'affine' in g_params['synthesis'][b][c]:
      rows.append((f'G.{b}.{c}.affine', 'G', ('synthesis', b, c, 'affine', 'bias')))
  rows += [(f'D.{b}.{c}', 'D', (b, c, 'kernel')) for b, c in d_layers(d_params)]
  return rows


def trainable(side: str, names: Tuple[str, ...], warm: bool) -> bool:
  """Which leaves RICK trains at all (official optimiser parameter lists)."""
  if side == 'G':
    return (not warm and names[0] == 'synthesis' and _res(names[1]) >= 8
            and names[2] in ('conv0', 'conv1'))
  if names[0] == 'b4':
    return True  # `final_conv`, `final_linear`: trained in warm-up too
  return not warm and names[1] in ('conv0', 'conv1', 'skip')


def rick(fisher_quantile: float = 75.0, prune_quantile: float = 0.1, warmup_iter: int = 250,
         fisher_freq: int = 50, num_fisher_img: int = 5, fisher_batch: int = 1,
         chunk: int = 2, max_estimates: int = 256, max_images: int = 1000) -> Method:
  """RICK as a plug-in: masks over G and D from periodic Fisher estimates.

  Args:
    fisher_quantile: percentile above which filters are frozen (official
      argparse default 75; README: AFHQ-Cat 85, Babies 40).
    prune_quantile: percentile at or below which filters are pruned (a
      percentile, not a fraction: 0.1 prunes the least important 0.1%;
      official default 0.1; README: AFHQ-Cat 0.075, Babies 0.1).
    warmup_iter: steps in which only D's epilogue trains (README: 250).
    fisher_freq: steps between importance estimates (README: 50).
    num_fisher_img: `_noise` latent files per estimate (official default 5).
    fisher_batch: latents (and real images) per file: 1, as the official
      files (train_dynamic_update_prune.py loops over the file's rows, one);
      0 = the run's batch size (num_fisher_img x batch images).
    chunk: per-image gradients computed together (speed / memory only).
    max_estimates: estimates recorded for the pruned/frozen-per-layer plot.
    max_images: target images kept in the method state for the D Fisher
      (few-shot sets are far smaller; larger sets are subsampled evenly).

  Returns:
    The Method named 'rick'.
  """
  if not 0 <= prune_quantile <= fisher_quantile <= 100:
    raise ValueError('need 0 <= prune_quantile <= fisher_quantile <= 100 (percentiles), got '
                     f'prune_quantile={prune_quantile}, fisher_quantile={fisher_quantile}')
  for name, v, lo in (('warmup_iter', warmup_iter, 0), ('fisher_freq', fisher_freq, 1),
                      ('num_fisher_img', num_fisher_img, 1), ('fisher_batch', fisher_batch, 0),
                      ('chunk', chunk, 1), ('max_estimates', max_estimates, 1),
                      ('max_images', max_images, 1)):
    if int(v) != v or v < lo:
      raise ValueError(f'rick: {name} must be an integer >= {lo}, got {v!r}')

  def estimate(ms, models, g_params, g_buffers, key, step):
    """Re-estimates importance and returns the method state with new masks."""
    d_params, zs, images = ms['d_ema'], ms['zs'], ms['images']
    n = zs.shape[0]
    k_noise, k_img = jax.random.split(key)
    noise_keys = jax.random.split(k_noise, n)
    reals = images[jax.random.randint(k_img, (n,), 0, images.shape[0])]
    f_g = fisher.generator_fisher(models, g_params, g_buffers, d_params, zs, noise_keys, chunk)

    def one_fake(z, k):
      ws = models.broadcast(models.map(g_params, g_buffers, z[None]))
      return models.synth(g_params, g_buffers, ws, k)[0]
    fakes = jax.lax.stop_gradient(jax.vmap(one_fake)(zs, noise_keys))

    def d_loss(p, x):  # official: d_logistic_loss(d_ema(real_1), d_ema(fake_1))
      real, fake = x
      logits = lambda img: models.disc(p, img[None], return_features=False)  # noqa: E731
      return d_logistic(logits(real), logits(fake))
    f_d = fisher.mean_squared_grads(d_loss, d_params, (reals, fakes), chunk)

    imp = filter_importance(f_g, f_d)
    fz_conv, pr_conv = decide(imp['g_conv'], fisher_quantile, prune_quantile)
    fz_fc, pr_fc = decide(imp['g_fc'], fisher_quantile, prune_quantile) if imp['g_fc'] else ({}, {})
    fz_d, pr_d = decide(imp['d'], fisher_quantile, prune_quantile)
    freeze = {'G': _per_filter_tree(g_params, 'G', fz_conv, fz_fc),
              'D': _per_filter_tree(d_params, 'D', d=fz_d)}
    prune_now = {'G': _per_filter_tree(g_params, 'G', pr_conv, pr_fc),
                 'D': _per_filter_tree(d_params, 'D', d=pr_d)}
    prune = jax.tree.map(jnp.maximum, ms['prune'], prune_now)  # pruned sets are united
    history = _record(ms['history'], ms['n_estimates'], step, freeze, prune, g_params, d_params)
    return {**ms, 'freeze': freeze, 'prune': prune, 'history': history,
            'n_estimates': ms['n_estimates'] + 1}

  def _record(history, i, step, freeze, prune, g_params, d_params):
    """Fractions of frozen / pruned filters per layer at estimate i."""
    def frac(tree, side, names):
      node = tree[side]
      for k in names:
        node = node[k]
      return jnp.mean(node)
    rows = {name: jnp.stack([frac(prune, side, names), frac(freeze, side, names)])
            for name, side, names in history_rows(g_params, d_params)}
    ok = i < max_estimates
    idx = jnp.minimum(i, max_estimates - 1)
    new = {'step': jnp.where(ok, history['step'].at[idx].set(step), history['step'])}
    new['fractions'] = {k: jnp.where(ok, history['fractions'][k].at[idx].set(v),
                                     history['fractions'][k]) for k, v in rows.items()}
    return new

  def init(ictx):
    bundle, hp = ictx.bundle, ictx.hp
    g = bundle.nets['G_ema']
    d = bundle.require('D')
    if ictx.images is None:
      raise ValueError('rick needs the target images (the D Fisher uses them)')
    images = jnp.asarray(ictx.images, jnp.float32)
    if images.shape[0] > max_images:
      images = images[np.linspace(0, images.shape[0] - 1, max_images).astype(int)]
    n = num_fisher_img * (fisher_batch or hp.batch_size)
    k_z, k_est = jax.random.split(ictx.key)
    none = jax.tree.map(jnp.zeros_like, filter_importance(g['params'], d['params']))
    g_zero = _per_filter_tree(g['params'], 'G', none['g_conv'], none['g_fc'])
    d_zero = _per_filter_tree(d['params'], 'D', d=none['d'])
    rows = [name for name, _, _ in history_rows(g['params'], d['params'])]
    ms = {
        'd_ema': d['params'],
        'zs': jax.random.normal(k_z, (n, bundle.config.z_dim), jnp.float32),
        'images': images,
        'freeze': {'G': g_zero, 'D': d_zero},
        'prune': {'G': g_zero, 'D': d_zero},
        'warm': jnp.asarray(warmup_iter > 0),
        'ema_beta': jnp.asarray(hp.ema_beta, jnp.float32),
        'n_estimates': jnp.zeros((), jnp.int32),
        'history': {'step': jnp.full((max_estimates,), -1, jnp.int32),
                    'fractions': {r: jnp.zeros((max_estimates, 2)) for r in rows}},
    }
    if warmup_iter == 0:  # the first estimate is due before step 0
      ms = jax.jit(estimate, static_argnums=1)(ms, ictx.models, g['params'], g['buffers'],
                                               k_est, 0)
    return MethodInit(state=ms)

  def update(uctx, ms):
    step = uctx.step  # the step about to run
    d_ema = ema(ms['d_ema'], uctx.d['net'], ms['ema_beta'])
    ms = {**ms, 'd_ema': d_ema, 'warm': step < warmup_iter}
    due = (step >= warmup_iter) & ((step - warmup_iter) % fisher_freq == 0)
    key = jax.random.fold_in(uctx.key, 0x52494B)  # independent of the step's own draws
    return jax.lax.cond(
        due, lambda m: estimate(m, uctx.models, uctx.g_ema, uctx.g_buffers, key, step),
        lambda m: m, ms)

  def grad_transform(side, grads, params, ms):
    live = jax.tree.map(lambda f, p: (1 - f) * (1 - p), ms['freeze'][side], ms['prune'][side])
    mask = jax.tree_util.tree_map_with_path(
        lambda path, l: jnp.where(ms['warm'],
                                  float(trainable(side, masks.path_names(path), True)),
                                  float(trainable(side, masks.path_names(path), False)) * l),
        live)
    return {**grads, 'net': masks.apply_mask(grads['net'], mask)}

  def param_transform(side, params, ms):
    keep = jax.tree.map(lambda p: 1 - p, ms['prune'][side])
    return {**params, 'net': masks.apply_mask(params['net'], keep)}

  return Method(name='rick', init=init, update=update, grad_transform=grad_transform,
                param_transform=param_transform, report=report, late_start=True,
                g_reg_active=lambda ms: jnp.logical_not(ms['warm']))


def report(ms, outdir: str) -> List[str]:
  """Plots the fraction of pruned and frozen filters per layer over training.

  Writes `rick_filters.png` and the numbers as `rick_filters.json` in `outdir`.
  """
  import json  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  hist = ms['history']
  n = int(min(int(ms['n_estimates']), len(hist['step'])))
  steps = np.asarray(hist['step'][:n])
  fractions = {k: np.asarray(v[:n]) for k, v in hist['fractions'].items()}
  json_path = write_text(os.path.join(outdir, 'rick_filters.json'), json.dumps(
      {'steps': steps.tolist(),
       'pruned': {k: v[:, 0].tolist() for k, v in fractions.items()},
       'frozen': {k: v[:, 1].tolist() for k, v in fractions.items()}}, indent=1))
  fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
  for row, side in enumerate(('G', 'D')):
    for col, (what, j) in enumerate((('pruned', 0), ('frozen', 1))):
      ax = axes[row, col]
      for k, v in fractions.items():
        if k.startswith(side + '.'):
          ax.plot(steps, v[:, j], marker='.', label=k[2:])
      ax.set_title(f'{side}: fraction of filters {what}')
      ax.set_xlabel('step')
      ax.grid(alpha=0.3)
      if col == 1:
        ax.legend(fontsize=6, ncol=2)
  fig.tight_layout()
  png_path = os.path.join(outdir, 'rick_filters.png')
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
  return [png_path, json_path]

