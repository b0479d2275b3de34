"""CDC: few-shot adaptation via cross-domain correspondence (Ojha et al. CVPR 2021).

"Few-shot Image Generation via Cross-domain Correspondence" adapts a source
StyleGAN2 with two changes to plain fine-tuning, both reproduced here from the
official code (WisconsinAIVision/few-shot-gan-adaptation, train.py at commit
f363dd42 and model.py at commit fdd00084; the stored train.py at 1c9b5e38 is a
third-party modification with conditional labels and `full_anchor_p`, and is
not what we follow):

1. Cross-domain distance consistency (paper Sec. 3.1, Eqs. 1-3; train.py, the
   "distance consistency loss" block of `train`). For `feat_const_batch` fresh
   latents, the source and adapted generators' intermediate features give, per
   anchor sample i, the cosine similarities to the other samples at a layer
   `feat_ind[i]` drawn per anchor; softmax over the others turns each row into
   a distribution, and the adapted G is pulled towards the source's with
   `kl_wt * nn.KLDivLoss()(log(dist_target), dist_source)`.
2. Anchor-based relaxed realism (paper Sec. 3.2, Eq. 4, as train.py's comment
   on `init_z` cites it; `get_subspace`, `which = i % subspace_freq`). `n_train` anchor latents are
   drawn once. On steps with `step % subspace_freq == 0` the batch latents are
   sampled around the anchors and the ordinary image-level D is used; on the
   other steps latents are sampled normally and a patch-level D judges
   intermediate D feature maps through a small head (model.py
   `Patch_Discriminator` and `Extra`).

Engine hooks used: `g_terms` (the distance term 'g_cdc_dist'), `sample_z`
(anchor latents), `disc` (image or patch D), and `d_extra` (the patch head,
trained with D's optimiser as the official `e_optim`, which has D's lr/betas).
"""
import functools
import math
from typing import List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from fsig_jax.errors import ConfigError
from fsig_jax.losses.relation import COS_EPS, cosine_similarity_matrix  # noqa: F401 (re-exported)
from fsig_jax.losses.relation import in_batch_sims, relation_kl
from fsig_jax.methods.base import Method, MethodInit
from fsig_jax.models.config import StyleGAN2Config, resolutions
from fsig_jax.nn.equalized import EqualConv2d

PATCH_KEY = 'cdc_patch'      # the head's parameters in state['D']
PATCH_RESOLUTIONS = (32, 16)  # model.py Patch_Discriminator.forward: spatial 32 or 16
MAX_PATCH_LAYERS = 4          # model.py: `if (flag > 0) and len(feat) == 4`; Extra has 4 heads


# --------------------------------------------------------------------------
# Distance consistency.

def latent_features(models, g_params, buffers, z: jax.Array, key: jax.Array,
                    keys: Sequence[str]):
  """{layer: G features} of the latents z, one latent each: no mixing (rosinality
  `len(styles) < 2`) and fresh noise from `key` per call (`randomize_noise=True`,
  so the source and target calls of the distance term see different noise)."""
  ws = models.broadcast(models.map(g_params, buffers, z))
  _, feats = models.synth(g_params, buffers, ws, key, return_features=True)
  return {k: feats[k] for k in keys}


def generator_feature_keys(cfg: StyleGAN2Config) -> List[str]:
  """Our G feature keys in the order of rosinality's `feat_list`.

  CDC's model.py `Generator.forward(return_feats=True)` appends the output of
  every StyledConv (modulated conv, noise, bias, scaled leaky ReLU): first
  `conv1` at 4x4, then per resolution the up-conv and the conv. Our synthesis
  features 'b{res}.conv{j}' are exactly these activations, so index k of the
  official list is key k here: 0 -> 'b4.conv1', 1 -> 'b8.conv0',
  2 -> 'b8.conv1', 3 -> 'b16.conv0', ... (the 'b{res}.img' ToRGB outputs are
  not in the official list).
  """
  keys = ['b4.conv1']
  for res in resolutions(cfg.resolution)[1:]:
    keys += [f'b{res}.conv0', f'b{res}.conv1']
  return keys


def distance_consistency_loss(src_feats: Sequence[jax.Array], tgt_feats: Sequence[jax.Array],
                              layer_idx: jax.Array, kl_wt: float = 1000.0) -> jax.Array:
  """CDC's cross-domain distance consistency loss (paper Sec. 3.1).

  train.py: for each anchor `pair1`, `dist[pair1, tmpc] = sim(feat[feat_ind[pair1]][pair1],
  feat[feat_ind[pair1]][pair2])` over pair2 != pair1, `dist = Softmax(dim=1)(dist)`,
  and `rel_loss = kl_wt * nn.KLDivLoss()(torch.log(dist_target), dist_source)`.
  KLDivLoss's default reduction in torch 1.7 is 'mean' over all B * (B - 1)
  elements (not 'batchmean'), so the loss is
  kl_wt * mean_ij p_ij (log p_ij - log q_ij), p the source, q the target rows.
  The rows and the KL are `fsig_jax.losses.relation`'s `in_batch_sims` (cosine)
  and `relation_kl`, shared with KD-FSIG.

  Args:
    src_feats: per layer, source-G features (B, ...); treated as constants.
    tgt_feats: per layer, adapted-G features (B, ...), same shapes.
    layer_idx: (B,) int, the layer each anchor row uses (`feat_ind`).
    kl_wt: the loss weight (train.py `--kl_wt`, default 1000).

  Returns:
    The scalar loss.
  """
  b = src_feats[0].shape[0]
  if b < 2:
    raise ValueError(f'distance consistency needs at least 2 samples, got {b}')
  return relation_kl(in_batch_sims(src_feats, layer_idx), in_batch_sims(tgt_feats, layer_idx),
                     kl_wt)


# --------------------------------------------------------------------------
# Anchors.

def subspace_latents(key: jax.Array, anchors: jax.Array, n: int, std: float) -> jax.Array:
  """train.py `get_subspace`: each of n latents picks a random anchor (with
  replacement, `np.random.randint(0, n_train, size=bs)`) and every coordinate is
  redrawn as N(anchor_j, std) (`z[i][j].data.normal_(z[i][j], std)`)."""
  k_idx, k_noise = jax.random.split(key)
  idx = jax.random.randint(k_idx, (n,), 0, anchors.shape[0])
  return anchors[idx] + std * jax.random.normal(k_noise, (n, anchors.shape[1]), anchors.dtype)


# --------------------------------------------------------------------------
# Patch discriminator.

def patch_layers(cfg: StyleGAN2Config) -> List[Tuple[str, int, int]]:
  """The D feature maps the patch D may judge: [(key, spatial size, channels)].

  model.py `Patch_Discriminator.forward` collects, in forward order, the
  outputs of each ResBlock's `conv1` (3x3) and `conv2` (3x3, down 2) that have
  512 channels and a 32x32 or 16x16 map, and stops at 4. rosinality's conv1 /
  conv2 are our blocks' conv0 / conv1, so for 256-1024 px this is
  ['b64.conv1', 'b32.conv0', 'b32.conv1', 'b16.conv0'] (`feat[0..3]`).
  Deviation: we select by spatial size only. In rosinality's and ada's
  standard configs every 32 and 16 px D map has 512 channels, so the channel
  test changes nothing there; dropping it lets narrow models (tests) work.
  Below 64 px the official code finds fewer than 4 maps and silently falls
  back to the image D; we use the maps that exist.
  """
  out = []
  for res in reversed(resolutions(cfg.resolution)[1:]):
    for name, size, width in (('conv0', res, cfg.d_width(res)),
                              ('conv1', res // 2, cfg.d_width(res // 2))):
      if size in PATCH_RESOLUTIONS:
        out.append((f'b{res}.{name}', size, width))
  return out[:MAX_PATCH_LAYERS]


def _head(i: int) -> EqualConv2d:
  """model.py `Extra.new_conv[i]` = ConvLayer(512, 1, 3): EqualConv2d 3x3
  (padding 1, no bias) + FusedLeakyReLU(1) (bias, leaky ReLU 0.2, x sqrt(2))."""
  return EqualConv2d(1, 3, act='lrelu', name=f'new_conv{i}')


@functools.partial(jax.jit, static_argnames='cfg')
def init_patch_head(key: jax.Array, cfg: StyleGAN2Config):
  """Parameters {'new_conv{i}': {'kernel', 'bias'}} of one head per patch layer
  (jitted: Flax's init run eagerly compiles a program per op)."""
  params = {}
  for i, (_, size, width) in enumerate(patch_layers(cfg)):
    dummy = jnp.zeros((1, size, size, width), jnp.float32)
    params[f'new_conv{i}'] = _head(i).init(jax.random.fold_in(key, i), dummy)['params']
  return params


def _tap_gain(key: str) -> float:
  """Our D folds the resnet sum's 1/sqrt(2) into conv1 (ada-pytorch style,
  stylegan2.py `DiscriminatorBlock`: gain sqrt(0.5)); rosinality's `conv2`
  output, which CDC taps, is before that scaling. The head has a bias and a
  leaky ReLU, so the scale matters: we divide it back out."""
  return math.sqrt(0.5) if key.endswith('conv1') else 1.0


def patch_logits(models, d_side, img: jax.Array, p_ind: jax.Array, highp: int):
  """Runs D once; returns (image logits (N, 1), D features, patch logits (N, P)).

  The taps are read with Flax's `capture_intermediates` from the one D pass.
  model.py returns right after the 16 px block on patch steps; we run the
  whole D because the hook needs the image logits too (selected by step,
  under jit). The unused part gets zero gradient, as in the official code.

  The patch logits are `Extra(feat[p_ind], p_ind)` of model.py: (N, s, s, 1)
  flattened. Heads at 16 px are nearest-upsampled to the largest map among the
  `highp` candidates so that `lax.switch` branches agree in shape; repeating
  every patch logit equally often leaves every mean over patches (the losses,
  R1's per-sample mean, the logged scores) unchanged.
  """
  layers = patch_layers(models.cfg)[:highp]
  wanted = {tuple(k.split('.')): i for i, (k, _, _) in enumerate(layers)}
  filt = lambda mdl, name: name == '__call__' and tuple(mdl.path) in wanted  # noqa: E731
  (logits, feats), inter = models.D.apply(
      {'params': d_side['net']}, img, return_features=True,
      capture_intermediates=filt, mutable=['intermediates'])
  inter = inter['intermediates']
  taps = []
  for key, _, _ in layers:
    blk, conv = key.split('.')
    taps.append(inter[blk][conv]['__call__'][0] / _tap_gain(key))
  big = max(size for _, size, _ in layers)

  def branch(i):
    def run(taps):
      y = _head(i).apply({'params': d_side[PATCH_KEY][f'new_conv{i}']}, taps[i])
      r = big // layers[i][1]
      y = jnp.repeat(jnp.repeat(y, r, axis=1), r, axis=2)
      return y.reshape(y.shape[0], -1)
    return run

  if highp == 1:
    patches = branch(0)(taps)
  else:
    patches = jax.lax.switch(p_ind, [branch(i) for i in range(highp)], taps)
  return logits, feats, patches


# --------------------------------------------------------------------------
# The method.

def cdc(kl_wt: float = 1000.0, feat_const_batch: int = 4, n_train: Optional[int] = None,
        subspace_freq: int = 4, subspace_std: float = 0.1, highp: int = 1) -> Method:
  """CDC with the official defaults (train.py argparse at commit f363dd42).

  Args:
    kl_wt: weight of the distance-consistency KL (`--kl_wt 1000`); 0 drops
      the term, leaving the anchors and the patch-level D.
    feat_const_batch: latents per distance-consistency term
      (`--feat_const_batch 4`).
    n_train: number of anchor latents (`--n_train 10`, meant to equal the
      number of target images). None: the number of target images passed to
      `init_state`, or 10 without images.
    subspace_freq: anchor steps are those with step % subspace_freq == 0
      (`--subspace_freq 4` at f363dd42 and in CDC-derived repos such as
      arith3/Progressive-Few-Shot-GAN-Adaptation; commit fdd00084 has 2).
    subspace_std: std of latents around an anchor (`--subspace_std 0.1`).
    highp: the patch layer is `p_ind ~ U{0, ..., highp - 1}` (`lowp, highp =
      0, args.highp`, `--highp 1`: always the first, the 32x32 output of the
      64 px block's down-conv at 256 px).

  Returns:
    The Method named 'cdc'; its loss term is 'g_cdc_dist'.

  Randomness: every draw comes from the engine's keys (the step's method key
  for the distance term and the patch layer, the latent key for anchors), so
  runs are reproducible under jit.

  Deviations from the official code, each forced by the engine's interface:
    * Anchor steps draw both of the engine's latents from the same subspace
      sample, so the engine's style mixing is a no-op there (the official
      anchor batch is a single latent, `[get_subspace(...)]`); other steps
      return two normal latents that the engine mixes with `hp.mixing_prob`,
      as `mixing_noise` does.
    * Path length uses plain mixing latents (the engine bypasses `sample_z`
      there), the real and fake D calls get independent keys (independent
      `p_ind` draws), and R1 averages logits per sample first (train.py's
      `real_pred.view(N, -1).mean(1)`), all as in the official code.
  """
  if subspace_freq < 1:
    raise ValueError(f'subspace_freq must be >= 1, got {subspace_freq}')
  if feat_const_batch < 2:
    raise ValueError(f'feat_const_batch must be >= 2, got {feat_const_batch}')

  def init(ictx):
    cfg = ictx.bundle.config
    layers = patch_layers(cfg)
    if not 1 <= highp <= len(layers):
      raise ConfigError(f'highp must be in [1, {len(layers)}] for a {cfg.resolution}px D '
                        f'(patch layers {[k for k, _, _ in layers]}), got {highp}; set '
                        f'config.method.kwargs.cdc.highp in that range' if layers else
                        f'CDC needs a D of at least 16 px for its patch discriminator (the '
                        f'model is {cfg.resolution} px)')
    n = n_train
    if n is None:
      n = 10 if ictx.images is None else int(np.shape(ictx.images)[0])
    k_anchor, k_head = jax.random.split(ictx.key)
    # train.py: init_z = torch.randn(args.n_train, args.latent)
    anchors = jax.random.normal(k_anchor, (n, cfg.z_dim), jnp.float32)
    return MethodInit(state={'anchors': anchors},
                      d_extra={PATCH_KEY: init_patch_head(k_head, cfg)})

  def is_anchor_step(step):
    return step % subspace_freq == 0  # train.py: which = i % subspace_freq; anchors if which == 0

  def sample_z(key, step, mstate, n):
    anchors = mstate['anchors']
    k_sub, k1, k2 = jax.random.split(key, 3)
    z_sub = subspace_latents(k_sub, anchors, n, subspace_std)
    z1 = jax.random.normal(k1, z_sub.shape, z_sub.dtype)
    z2 = jax.random.normal(k2, z_sub.shape, z_sub.dtype)
    anchor = is_anchor_step(step)
    return [jnp.where(anchor, z_sub, z1), jnp.where(anchor, z_sub, z2)]

  def draw_p_ind(ctx):
    return jax.random.randint(jax.random.fold_in(ctx.key, 0), (), 0, highp)

  def disc(ctx, d_side, img, mstate):
    logits, feats, patches = patch_logits(ctx.models, d_side, img, draw_p_ind(ctx), highp)
    logits = jnp.broadcast_to(logits, patches.shape)
    return jnp.where(is_anchor_step(ctx.step), logits, patches), feats

  def ada_signs(ctx, real_logits, mstate):
    """train.py:240-241 `torch.sign(real_pred).sum()` of what D returned: the (N, 1)
    image logits on anchor steps (here broadcast over the patch columns: counted
    once), the (N, 1, s, s) patch map otherwise (every patch; a head nearest-upsampled
    r x r here is counted once per original patch). CDC divides by N only, so its r_t
    on patch steps ranges over [-s^2, s^2] (kept: it is what ran)."""
    sizes = [size for _, size, _ in patch_layers(ctx.models.cfg)[:highp]]
    repeats = jnp.asarray([(max(sizes) // size) ** 2 for size in sizes], jnp.float32)
    image = jnp.sum(jnp.sign(real_logits[:, 0]))
    patches = jnp.sum(jnp.sign(real_logits)) / repeats[draw_p_ind(ctx)]
    return jnp.where(is_anchor_step(ctx.step), image, patches)

  def g_terms(ctx, mstate):
    if kl_wt == 0:  # the patch D / anchors alone (DCL's paper row, methods/dcl.py)
      return {}
    models, cfg = ctx.models, ctx.models.cfg
    keys = generator_feature_keys(cfg)
    kz, kind, ksrc, ktgt = jax.random.split(jax.random.fold_in(ctx.key, 1), 4)
    z = jax.random.normal(kz, (feat_const_batch, cfg.z_dim))
    # train.py: feat_ind = randint(1, n_latent - 1, size=feat_const_batch), with
    # n_latent - 1 == len(feat_list): every layer but the 4x4 conv.
    layer_idx = jax.random.randint(kind, (feat_const_batch,), 1, len(keys))

    def features(g_params, key):
      f = latent_features(models, g_params, ctx.g_buffers, z, key, keys)
      return [f[k] for k in keys]

    src = jax.lax.stop_gradient(features(ctx.source_g, ksrc))  # torch.set_grad_enabled(False)
    tgt = features(ctx.g['net'], ktgt)
    return {'g_cdc_dist': distance_consistency_loss(src, tgt, layer_idx, kl_wt)}

  # StyleGAN2 only: the patch head sits on D's StyleGAN2 blocks and the anchors use
  # G's per-layer features (CDC Sec. 3 is defined on StyleGAN2).
  return Method(name='cdc', init=init, g_terms=g_terms, sample_z=sample_z, disc=disc,
                ada_signs=ada_signs, architectures=('stylegan2',))
