"""KD-FSIG: knowledge distillation for few-shot image generation.

"Exploiting Knowledge Distillation for Few-shot Image Generation" (withdrawn
ICLR 2022 submission; no public code). The method is CDC (Ojha et al. 2021,
`fsig_jax.methods.cdc`: anchors, patch discriminator, relation distillation
between the frozen source G_S and the adapted G_T) with three changes, each a
row of the paper's Table 3 and a setting here:

1. +SSIM-A (Eq. 5): the relation rows compare features with SSIM on
   activations instead of cosine similarity (`losses.relation.ssim_a`; window,
   padding and constants are decisions documented there, fields here).
2. +momentum relation (Eqs. 6-7): each row's keys are the other samples of the
   batch through G_T (with gradient), the current batch through the momentum
   generator G_M (the EMA generator, as the paper says it uses; computed with
   the EMA after the previous step, Eq. 7's timing) and a queue of G_M features
   of earlier batches; the source side has the same latents through G_S
   (`losses.relation.momentum_relation_sims`, whose docstring gives the
   source-side decision). Eq. 7 lists the current batch through G_M as keys,
   the anchor itself included: the default (`moco=False`); `moco=True` keeps
   only the queue of earlier batches (the MoCo reading). In the literal
   reading the anchor's own G_M key has source-side similarity exactly 1
   (G_S(z_i) against itself), the largest of its row, so the loss pulls
   G_T(z_i) toward G_M(z_i), an EMA that lags G_T by hundreds of steps; the
   README's KD-FSIG table measures both readings (configs: rows
   `momentum_moco`, `full_moco`).
3. +SDD, source discrimination distillation (Eq. 9): the patch discriminator
   D_P also learns to tell real source-domain images from G_S samples,
   logistic loss with weight beta = 0.1, at every D step, no R1 on these
   images. Its gradient reaches only what D_P is made of (the D trunk up to the
   patch tap and the patch head): never G_T, and not the D layers above the tap
   or the image-level head.

The objective is Eq. 10: CDC's adversarial loss with anchors and patch D +
alpha * L_dist(G_T, G_S) (Eq. 8: KL(P_source || P_target), CDC's reduction,
one randomly drawn layer per row as in CDC's code) + beta * L_SDD.

Decisions where the paper is silent (each a field):
* The relation batch is CDC's: `feat_const_batch` (4) fresh latents each step,
  a single latent each (no style mixing), at one layer drawn per row from the
  layers CDC draws from (every StyledConv output but the 4x4 one).
* Noise: as CDC, every generator call draws its own noise (rosinality
  `randomize_noise=True`), so G_T, G_M and G_S see different noise for the same
  latent; `shared_noise=True` gives the three calls one noise draw per step.
  With the CDC noise policy, cosine similarity and in-batch keys only, this
  method computes exactly CDC's loss (tested bit for bit), so "+SSIM-A"
  differs from CDC only in the similarity.
* The queue counts instances (default 16, four batches of 4; the paper sweeps
  4/8/12/16 at batch 4), is first-in-first-out by whole batches (size a
  multiple of feat_const_batch), is pre-filled at init with fresh latents
  through the source model (G_M part: the bundle's G_ema, which is G_M at step
  0; G_S part: the source G), and stores, stop-gradient, the features of every
  layer a row may draw for both G_M and G_S (`losses.relation.queue_push`). It
  is method state, so it is checkpointed. At 256 px with 16 instances that is
  roughly 2 x 16 copies of G's feature maps; at 64 px a few MB.
* SDD's images: a configured folder (`source_images`; offline the anime
  training split `../shared/data/anime_faces_64/train`, never its test split,
  whose photos make the evaluation sketches; the paper setups the user's FFHQ
  folder), at most `source_max_images` of them (sorted file order) held in
  memory, drawn `hp.batch_size` per step with their own sampler (a pure
  function of (seed, step)); G_S samples with one latent each and fresh noise;
  no augmentation. The patch layer is drawn like CDC's (`highp`).
* alpha = 1e4 (the issue's setting, against CDC's reduction, which divides
  each row's KL by its key count); beta = 0.1.
"""
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp

from fsig_jax.errors import ConfigError
from fsig_jax.losses.adversarial import d_logistic
from fsig_jax.losses.relation import (cosine_matrix, in_batch_sims, momentum_relation_sims,
                                      queue_init, queue_push, relation_kl, rows_at_layers,
                                      ssim_a_matrix)
from fsig_jax.methods.base import Method, MethodInit
from fsig_jax.methods.cdc import cdc, generator_feature_keys, latent_features, patch_logits
from fsig_jax.models.functional import Models

SOURCE_STREAM = 'kd_fsig_source'   # Method.data stream of real source images
QUEUE_AUX = 'kd_fsig_queue'        # StepContext.aux: this step's G_M / G_S features
SIMILARITIES = ('ssim_a', 'cosine')


@functools.partial(jax.jit, static_argnames=('cfg', 'n', 'keys'))
def _prefill(cfg, g_ema, g_source, buffers, key, n: int, keys):
  """The initial queue: n fresh latents through G_M (= G_ema at step 0) and G_S."""
  models = Models(cfg)
  k_z, k_m, k_s = jax.random.split(key, 3)
  z = jax.random.normal(k_z, (n, cfg.z_dim), jnp.float32)
  return {'m': latent_features(models, g_ema, buffers, z, k_m, keys),
          's': latent_features(models, g_source, buffers, z, k_s, keys)}


def kd_fsig(alpha: float = 1e4, similarity: str = 'ssim_a', momentum: bool = True,
            queue_size: int = 16, moco: bool = False, sdd_weight: float = 0.1,
            source_images: Any = '', source_max_images: int = 10000,
            shared_noise: bool = False, ssim_window: int = 11, ssim_sigma: float = 1.5,
            ssim_c1: float = 1e-4, ssim_c2: float = 9e-4, ssim_padding: str = 'same',
            feat_const_batch: int = 4, n_train: Optional[int] = None, subspace_freq: int = 4,
            subspace_std: float = 0.1, highp: int = 1) -> Method:
  """KD-FSIG as a plug-in (module docstring); the last five arguments are CDC's.

  Args:
    alpha: weight of the relation distillation (Eq. 10's alpha, 1e4).
    similarity: 'ssim_a' (Eq. 5) or 'cosine' (CDC's).
    momentum: keys from the momentum generator G_M (current batch unless
      `moco`, and the queue); False: the other in-batch samples only.
    queue_size: G_M instances kept from earlier batches (0: none), a multiple
      of feat_const_batch.
    moco: leave out the current batch's G_M keys (MoCo reading of Eq. 7).
    sdd_weight: beta of source discrimination distillation (Eq. 9); 0: off.
    source_images: folder (or NHWC array) of real source-domain images for SDD.
    source_max_images: at most this many of them are loaded (0: all).
    shared_noise: one noise draw for G_T, G_M and G_S in the relation term.
    ssim_window, ssim_sigma, ssim_c1, ssim_c2, ssim_padding: SSIM-A's settings.
    feat_const_batch, n_train, subspace_freq, subspace_std, highp: as `cdc`.

  Returns:
    The Method named 'kd_fsig'; loss terms 'g_kd_dist' and 'd_kd_sdd'.
  """
  if similarity not in SIMILARITIES:
    raise ValueError(f'kd_fsig: similarity must be one of {SIMILARITIES}, got {similarity!r}')
  if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 0:
    raise ValueError(f'kd_fsig: queue_size must be an integer >= 0, got {queue_size!r}')
  if queue_size % feat_const_batch:
    raise ValueError(f'kd_fsig: queue_size ({queue_size}) must be a multiple of '
                     f'feat_const_batch ({feat_const_batch}): the queue moves by whole batches')
  if not momentum and (queue_size or moco):
    raise ValueError('kd_fsig: queue_size and moco need momentum=True (set queue_size=0 for '
                     'in-batch keys only)')
  if momentum and moco and not queue_size:
    raise ValueError('kd_fsig: momentum with moco=True and queue_size=0 has no momentum keys')
  if sdd_weight < 0:
    raise ValueError(f'kd_fsig: sdd_weight must be >= 0, got {sdd_weight}')
  no_source = source_images is None or isinstance(source_images, str) and not source_images
  base = cdc(kl_wt=alpha, feat_const_batch=feat_const_batch, n_train=n_train,
             subspace_freq=subspace_freq, subspace_std=subspace_std, highp=highp)
  use_queue = momentum and queue_size > 0
  if similarity == 'cosine':
    sim = cosine_matrix
  else:
    sim = functools.partial(ssim_a_matrix, window=ssim_window, sigma=ssim_sigma, c1=ssim_c1,
                            c2=ssim_c2, padding=ssim_padding)

  def init(ictx):
    # Checked here, not when the method is built: the registry builds every method
    # with its defaults (exports, architecture checks), which need no images.
    if sdd_weight > 0 and no_source:
      raise ConfigError(
          'kd_fsig: source discrimination distillation (sdd_weight > 0) needs real images of '
          'the source domain: set method.kwargs.kd_fsig.source_images=FOLDER (offline: '
          '../shared/data/anime_faces_64/train; paper setups: your FFHQ folder), or '
          'sdd_weight=0 to run without SDD')
    out = base.init(ictx)
    state = dict(out.state)
    if use_queue:
      b = ictx.bundle
      keys = tuple(generator_feature_keys(b.config)[1:])
      g_ema = b.nets['G_ema']
      g = b.nets.get('G', g_ema)
      state['queue'] = queue_init(_prefill(b.config, g_ema['params'], g['params'],
                                           g['buffers'], jax.random.fold_in(ictx.key, 0x4B44),
                                           queue_size, keys))
    return MethodInit(state=state, g_extra=out.g_extra, d_extra=out.d_extra)

  def g_terms(ctx, ms):
    models, cfg = ctx.models, ctx.models.cfg
    keys = generator_feature_keys(cfg)
    # As cdc.g_terms (same keys, so with cosine and in-batch keys the same loss).
    kz, kind, ksrc, ktgt = jax.random.split(jax.random.fold_in(ctx.key, 1), 4)
    kmom = jax.random.fold_in(ctx.key, 2)
    if shared_noise:
      ksrc = kmom = ktgt
    z = jax.random.normal(kz, (feat_const_batch, cfg.z_dim))
    layer_idx = jax.random.randint(kind, (feat_const_batch,), 1, len(keys))
    feats = lambda p, k: latent_features(models, p, ctx.g_buffers, z, k, keys)  # noqa: E731
    src = jax.lax.stop_gradient(feats(ctx.source_g, ksrc))
    tgt = feats(ctx.g['net'], ktgt)
    if not momentum and similarity == 'cosine':  # exactly CDC's rows and arithmetic
      loss = relation_kl(in_batch_sims([src[k] for k in keys], layer_idx),
                         in_batch_sims([tgt[k] for k in keys], layer_idx), alpha)
      return {'g_kd_dist': loss}
    # In-batch keys only ("+SSIM-A") are the momentum rows without momentum keys.
    mom = jax.lax.stop_gradient(feats(ctx.g_ema, kmom)) if momentum else tgt
    drawn = keys[1:]  # the layers a row may draw (layer_idx >= 1)
    queue = ms.get('queue')

    def row(layer, r):
      # Only the drawn layer's similarities are computed (SSIM-A at every layer
      # and then selecting, as CDC does for its cheap cosine, costs ~L times more).
      k = drawn[layer]
      q_m, q_s = (queue['m'][k], queue['s'][k]) if use_queue else (None, None)
      return momentum_relation_sims(tgt[k], mom[k], q_m, src[k], q_s, sim=sim,
                                    moco=moco or not momentum, rows=[r])

    src_sims, tgt_sims = rows_at_layers(row, layer_idx - 1, len(drawn), feat_const_batch)
    if use_queue:
      ctx.aux[QUEUE_AUX] = {'m': {k: mom[k] for k in drawn}, 's': {k: src[k] for k in drawn}}
    return {'g_kd_dist': relation_kl(src_sims, tgt_sims, alpha)}

  def d_terms(ctx, ms):
    if sdd_weight == 0 or ctx.phase != 'D':
      return {}
    models = ctx.models
    real = ctx.extra[SOURCE_STREAM]
    k_z, k_noise, k_p = jax.random.split(jax.random.fold_in(ctx.key, 3), 3)
    z = jax.random.normal(k_z, (real.shape[0], models.cfg.z_dim))
    ws = models.broadcast(models.map(ctx.source_g, ctx.g_buffers, z))
    fake = jax.lax.stop_gradient(models.synth(ctx.source_g, ctx.g_buffers, ws, k_noise))
    p_ind = jax.random.randint(k_p, (), 0, highp)
    _, _, p_real = patch_logits(models, ctx.d, real, p_ind, highp)
    _, _, p_fake = patch_logits(models, ctx.d, fake, p_ind, highp)
    return {'d_kd_sdd': sdd_weight * d_logistic(p_real, p_fake)}

  def update(uctx, ms):
    if not use_queue:
      return ms
    return {**ms, 'queue': queue_push(ms['queue'], uctx.g_aux[QUEUE_AUX])}

  data = {}
  if sdd_weight > 0 and not no_source:
    data[SOURCE_STREAM] = {'source': source_images, 'max_images': source_max_images,
                           'setting': 'method.kwargs.kd_fsig.source_images'}
  return Method(name='kd_fsig', init=init, g_terms=g_terms, d_terms=d_terms, update=update,
                sample_z=base.sample_z, disc=base.disc, data=data,
                architectures=('stylegan2',))
