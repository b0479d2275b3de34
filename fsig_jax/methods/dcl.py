"""DCL: Dual Contrastive Learning for few-shot adaptation (Zhao et al. CVPR 2022).

Zhao, Ding, Huang & Cheung, "A Closer Look at Few-shot Image Generation",
CVPR 2022 (arXiv:2205.03805), Sec. 4. Adaptation loses the source domain's
diversity; DCL slows that down by maximising, with InfoNCE contrastive losses,
the mutual information between what the frozen source generator G_s and the
adapted generator G_t make of the same latent z_i, measured in two feature
spaces ("dual"):

  Generator CL (Eq. 2), added to the G loss with weight lambda_1:
    L_CL1 = -1/N sum_i log  exp(f(G_t^l(z_i), G_s^l(z_i)) / tau)
                            / sum_{j=0}^{N-1} exp(f(G_t^l(z_i), G_s^l(z_j)) / tau)
    anchor: the adapted G's layer-l features of z_i; positive: the source G's
    features of the same z_i; negatives: the source features of the other z_j.

  Discriminator CL (Eq. 3), added to the D loss with weight lambda_2:
    L_CL2 = -1/N sum_i log  exp(f(a_i, p_i) / tau)
                            / (exp(f(a_i, p_i) / tau) + sum_{j=1}^{M} exp(f(a_i, D^l(x_j)) / tau))
    a_i = D^l(G_t(z_i)) (anchor), p_i = D^l(G_s(z_i)) (positive), and the M
    real target images x_j of the batch as negatives: in the discriminator's
    feature space an adapted sample should stay closer to its source
    counterpart than to the few real images it would otherwise replicate.

  f is the cosine similarity of the flattened (C*H*W) feature maps, and the
  total objective is L_adv + lambda_1 L_CL1 + lambda_2 L_CL2 (Eq. 4).

  (The paper's text was not at hand when this was written: the equations and
  their numbers are transcribed from the authors' description and should be
  checked against the PDF; Eq. 1 is the fine-tuning GAN objective.)

Official code. The authors' repository (yunqing-me/A-Closer-Look-at-FSIG,
commit 7b837f3) publishes only `model.py`, a fork of CDC's rosinality-based
model whose networks return the features DCL contrasts: `Generator.forward(...,
return_feats=True)` returns `feat_list` (model.py l. 536-560), the output of
every StyledConv (the 4x4 conv1, then conv0 and conv1 of every resolution, no
ToRGB), and `Discriminator.forward` (l. 675-707) returns `feat`, the fromRGB
output (l. 679-681), the conv1 and conv2 outputs of every ResBlock (l.
683-686) and the final 3x3 conv (l. 702-703): 1 + 2 * (log2(R) - 2) + 1 maps,
14 at 256 px. The training script is not published, so the remaining details follow the paper's equations and, where the
paper is silent, the DCL baseline of btheodorou99/MRI2PET
(src/baselines/models/dclGAN.py `compute_dcl_loss`,
src/baselines/train_scripts/train_dclGAN.py `DCL_TAU`, `DCL_LAMBDA1`,
`DCL_LAMBDA2`), a third-party re-implementation:

  * tau = 0.07, lambda_1 = 2 (G), lambda_2 = 0.5 (D): train_dclGAN.py. 0.07 is
    also the MoCo / CUT temperature.
  * f = cosine similarity of flattened features (dclGAN.py uses
    F.cosine_similarity on flattened activations).
  * One layer l drawn uniformly at random per step and per side (dclGAN.py
    `random.randint(0, len(acts_S) - 1)`), which over training covers the
    "multi-level" features; `layer_mode='mean'` averages all layers instead.
  * No projection heads: neither model.py nor the re-implementation has one,
    so DCL adds no trainable parameters (MethodInit g_extra/d_extra are empty).
  * The generator CL is minimised by G only (G_s is frozen); the
    discriminator CL is minimised by D only, as in train_dclGAN.py (it is part
    of `d_loss`). Its gradient reaches D through the anchor, the positive and
    the negatives alike.

  We keep the paper's equations where the re-implementation departs from them:
  Eq. 2's denominator includes the positive (dclGAN.py leaves it out), and
  Eq. 3's negatives are all M real images (dclGAN.py skips x_i).

Choices of ours (the paper and the public code do not fix them):

  * Latents: each side draws its own batch of N = `batch` (default
    hp.batch_size) latents z ~ N(0, I) from ctx.key, without style mixing, and
    runs both generators on them (as CDC's consistency loss does with its own
    z batch). The engine's adversarial batch cannot be reused: it is style
    mixed through G_t's mapping network, and the source counterpart of z_i must
    go through G_s's own mapping network.
  * Noise: G_s and G_t share the per-pixel noise (`share_noise=True`), so the
    positive pair differs only by the adaptation of the weights and G_t = G_s
    gives identical features. rosinality's code (`randomize_noise=True`) draws
    independent noise per call; `share_noise=False` does that.
  * Layers: the G layers are exactly the official `feat_list`: 'b4.conv1',
    'b{res}.conv0', 'b{res}.conv1'. The D layers (`d_layers='official'`, the
    default) are exactly the official `feat`: 'b{R}.fromrgb', then per block
    'b{res}.conv0' and 'b{res}.conv1' (rosinality ResBlock conv1 / conv2,
    models/stylegan2.py `DiscriminatorBlock`) and 'b4.conv' (the final conv).
    `d_layers='blocks'` keeps this module's earlier taps, the resnet block
    outputs 'b{res}' and 'b4.conv'.
  * The discriminator CL sees un-augmented images (DiffAugment's independent
    translations would break the spatial correspondence of the flattened maps);
    with hp.augment unset the engine's real features are reused.

Paper configuration (our reading of model.py; the training script is not
public). Beside `Discriminator`, model.py ships `PatchGAN` (l. 710-792), CDC's
`Patch_Discriminator` with the contrastive `feat_list` added (same `forward(inp,
ind, extra, flag, p_ind)` signature and early return on patch steps, l.
749-774), and `Extra` (l. 795-809, "to apply the patch-level adversarial loss",
l. 796), CDC's patch head. The official DCL model is thus CDC's adversarial
set-up (anchor-region image D + patch-level D, CDC's "relaxed realism") with
DCL's contrastive terms in place of CDC's distance consistency, which DCL's
generator CL replaces. So DCL's paper row is `dcl` composed with `cdc` at
`kl_wt=0`: configs/common.py ALIASES['dcl_paper'], which configs/paper_ffhq256.py
uses for 'dcl'. Plain `dcl` (adversarial loss of plain TGAN) stays available.
Two details of `PatchGAN.forward` we do not copy: its `feat_list` appends each
block's conv2 output twice (l. 765 and l. 770) and leaves out the final conv
(l. 788 commented out), and on patch steps it stops after the 16 px block (l.
771-774); we contrast the `Discriminator.forward` list (l. 675-707) on a full
un-augmented D pass, which `Discriminator` implies and which is the same on
every step.

Terms (logged by name): 'dcl_g' = lambda_1 * L_CL1 in the G loss and
'dcl_d' = lambda_2 * L_CL2 in the D loss; a zero weight drops its term.
"""
from typing import Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

from fsig_jax.methods.base import Method, MethodInit
from fsig_jax.models.config import resolutions

TAU = 0.07      # train_dclGAN.py DCL_TAU.
LAMBDA_G = 2.0  # train_dclGAN.py DCL_LAMBDA1 (generator CL, paper lambda_1).
LAMBDA_D = 0.5  # train_dclGAN.py DCL_LAMBDA2 (discriminator CL, paper lambda_2).
LAYER_MODES = ('random', 'mean')
D_LAYER_SETS = ('official', 'blocks')


# ------------------------------------------------------------------ pure losses


def _unit_rows(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """(N, ...) -> (N, D) float32 rows of unit L2 norm (norms floored at eps, as torch)."""
  x = x.reshape(x.shape[0], -1).astype(jnp.float32)
  return x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), eps)


def cosine_matrix(a: jax.Array, b: jax.Array) -> jax.Array:
  """(N, ...), (M, ...) -> (N, M) cosine similarities of the flattened samples."""
  return jnp.matmul(_unit_rows(a), _unit_rows(b).T, precision=jax.lax.Precision.HIGHEST)


def generator_infonce(target: jax.Array, source: jax.Array, tau: float = TAU) -> jax.Array:
  """Generator CL, paper Eq. 2, averaged over the N anchors.

  Args:
    target: (N, ...) adapted-generator features G_t^l(z_i) (the anchors).
    source: (N, ...) source-generator features G_s^l(z_j) of the same latents;
      row i is the positive of anchor i, the other rows its negatives.
    tau: temperature.

  Returns:
    mean_i -log softmax_j(f(t_i, s_j) / tau)[i]; the denominator includes the
    positive, as in the paper.
  """
  logits = cosine_matrix(target, source) / tau
  return -jnp.mean(jnp.diagonal(jax.nn.log_softmax(logits, axis=1)))


def discriminator_infonce(anchor: jax.Array, positive: jax.Array, negatives: jax.Array,
                          tau: float = TAU) -> jax.Array:
  """Discriminator CL, paper Eq. 3, averaged over the N anchors.

  Args:
    anchor: (N, ...) D features of the adapted generator's images G_t(z_i).
    positive: (N, ...) D features of the source generator's images G_s(z_i).
    negatives: (M, ...) D features of the real target images x_j, shared by
      every anchor.
    tau: temperature.

  Returns:
    mean_i -log [e^{f(a_i,p_i)/tau} / (e^{f(a_i,p_i)/tau} + sum_j e^{f(a_i,x_j)/tau})].
  """
  a = _unit_rows(anchor)
  pos = jnp.sum(a * _unit_rows(positive), axis=1, keepdims=True)
  neg = cosine_matrix(anchor, negatives)
  logits = jnp.concatenate([pos, neg], axis=1) / tau
  return -jnp.mean(jax.nn.log_softmax(logits, axis=1)[:, 0])


def combine_levels(losses: Sequence[jax.Array], mode: str, key: jax.Array) -> jax.Array:
  """One loss from per-layer losses: a uniformly drawn layer ('random') or the mean.

  The draw is traced (jax.random), so it changes every step under jit; the
  unselected layers get zero gradient.
  """
  stacked = jnp.stack(list(losses))
  if mode == 'mean':
    return jnp.mean(stacked)
  return stacked[jax.random.randint(key, (), 0, stacked.shape[0])]


# ------------------------------------------------------------------ layers


def default_g_layers(resolution: int) -> Tuple[str, ...]:
  """Every modulated conv output, the official `feat_list` order."""
  names = []
  for res in resolutions(resolution):
    names += [f'b{res}.conv1'] if res == 4 else [f'b{res}.conv0', f'b{res}.conv1']
  return tuple(names)


def default_d_layers(resolution: int, which: str = 'official') -> Tuple[str, ...]:
  """The D taps, from the input side.

  'official': model.py `Discriminator.forward` `feat` (l. 675-707): fromRGB,
  each ResBlock's conv1 and conv2 (our 'b{res}.conv0' / 'b{res}.conv1'), the
  final conv. 'blocks': every resnet block output 'b{res}', then 'b4.conv'.
  """
  blocks = list(reversed(resolutions(resolution)[1:]))
  if which == 'blocks':
    return tuple(f'b{res}' for res in blocks) + ('b4.conv',)
  if which != 'official':
    raise ValueError(f'dcl: d_layers must be one of {D_LAYER_SETS} or a list of D feature '
                     f'keys, got {which!r}')
  inner = [f'b{res}.{c}' for res in blocks for c in ('conv0', 'conv1')]
  return (f'b{resolution}.fromrgb', *inner, 'b4.conv')


def _check_layers(given, available, side):
  layers = tuple(available if given is None else given)
  unknown = [l for l in layers if l not in available]
  if not layers or unknown:
    raise ValueError(f'dcl: {side} layers must be a non-empty subset of {list(available)}, '
                     f'got {list(layers)}')
  return layers


# ------------------------------------------------------------------ the method


def latent_pair(ctx, key: jax.Array, n: int, share_noise: bool = True,
                with_features: bool = False):
  """(G_t output, G_s output) for the same n fresh latents z ~ N(0, I).

  Each generator maps z through its own mapping network (no style mixing); the
  per-pixel noise is drawn from one key for both when `share_noise`. The
  source side is wrapped in stop_gradient. Outputs are images, or
  (image, features) when `with_features`.
  """
  models = ctx.models
  kz, kn, kn_src = jax.random.split(key, 3)
  z = jax.random.normal(kz, (n, models.cfg.z_dim))

  def run(params, noise_key):
    ws = models.broadcast(models.map(params, ctx.g_buffers, z))
    return models.synth(params, ctx.g_buffers, ws, noise_key, return_features=with_features)

  source = jax.lax.stop_gradient(run(ctx.source_g, kn if share_noise else kn_src))
  return run(ctx.g['net'], kn), source


def dcl(lambda_g: float = LAMBDA_G, lambda_d: float = LAMBDA_D, tau: float = TAU,
        g_layers: Optional[Sequence[str]] = None,
        d_layers: Union[str, Sequence[str]] = 'official',
        layer_mode: str = 'random', batch: Optional[int] = None,
        share_noise: bool = True) -> Method:
  """DCL as a method plug-in (see the module docstring for sources and choices).

  Args:
    lambda_g: weight of the generator CL (paper lambda_1), term 'dcl_g'.
    lambda_d: weight of the discriminator CL (paper lambda_2), term 'dcl_d'.
    tau: InfoNCE temperature of both losses.
    g_layers: generator feature keys to contrast (default: every conv output,
      `default_g_layers`).
    d_layers: discriminator taps: 'official' (default: fromRGB, every block's
      conv0 and conv1, 'b4.conv', as model.py), 'blocks' (every block output
      'b{res}' and 'b4.conv'), or a list of keys from both sets and 'b4.fc'
      (`default_d_layers`).
    layer_mode: 'random' (one layer per step and side) or 'mean' (all layers).
    batch: latents per contrastive batch N (default hp.batch_size); needs >= 2
      so that every anchor has a negative.
    share_noise: run G_s and G_t with the same per-pixel noise.
  """
  if layer_mode not in LAYER_MODES:
    raise ValueError(f'dcl: layer_mode must be one of {LAYER_MODES}, got {layer_mode!r}')
  if not tau > 0:
    raise ValueError(f'dcl: tau must be positive, got {tau}')
  if isinstance(d_layers, str) and d_layers not in D_LAYER_SETS:
    raise ValueError(f'dcl: d_layers must be one of {D_LAYER_SETS} or a list of D feature '
                     f'keys, got {d_layers!r}')

  def layers(cfg):
    g = _check_layers(g_layers, default_g_layers(cfg.resolution), 'G')
    r = cfg.resolution
    known = default_d_layers(r, 'official') + default_d_layers(r, 'blocks')[:-1] + ('b4.fc',)
    if d_layers is None or isinstance(d_layers, str):
      d = default_d_layers(r, d_layers or 'official')
    else:
      d = _check_layers(d_layers, known, 'D')
    return g, d

  def size(hp):
    n = hp.batch_size if batch is None else batch
    if n < 2:
      raise ValueError(f'dcl: the contrastive batch needs at least 2 latents, got {n}')
    return n

  def init(ictx):
    layers(ictx.bundle.config)
    size(ictx.hp)
    return MethodInit()

  def g_terms(ctx, mstate):
    if lambda_g == 0:
      return {}
    g_names, _ = layers(ctx.models.cfg)
    kpair, klayer = jax.random.split(ctx.key)
    (_, feats_t), (_, feats_s) = latent_pair(ctx, kpair, size(ctx.hp), share_noise,
                                             with_features=True)
    losses = [generator_infonce(feats_t[l], feats_s[l], tau) for l in g_names]
    return {'dcl_g': lambda_g * combine_levels(losses, layer_mode, klayer)}

  def d_terms(ctx, mstate):
    if lambda_d == 0:
      return {}
    _, d_names = layers(ctx.models.cfg)
    kpair, klayer = jax.random.split(ctx.key)
    img_t, img_s = latent_pair(ctx, kpair, size(ctx.hp), share_noise)
    d_net = ctx.d['net']
    _, feats_t = ctx.models.disc(d_net, jax.lax.stop_gradient(img_t))
    _, feats_s = ctx.models.disc(d_net, img_s)
    if ctx.hp.augment or ctx.d_feats_real is None:
      _, feats_r = ctx.models.disc(d_net, ctx.real)
    else:
      feats_r = ctx.d_feats_real  # the engine's un-augmented real features
    losses = [discriminator_infonce(feats_t[l], feats_s[l], feats_r[l], tau) for l in d_names]
    return {'dcl_d': lambda_d * combine_levels(losses, layer_mode, klayer)}

  # StyleGAN2 only: its contrastive features are read at StyleGAN2 layers.
  return Method(name='dcl', init=init, g_terms=g_terms, d_terms=d_terms,
                architectures=('stylegan2',))
