"""Relation distillation: similarity lists, SSIM on activations, momentum keys, queue.

The pieces shared by CDC (Ojha et al., CVPR 2021) and KD-FSIG ("Exploiting
Knowledge Distillation for Few-shot Image Generation", withdrawn ICLR 2022
submission, no public code). Each relation loss compares, row by row, a softmax
over similarities of an anchor's feature to a list of keys in the source
generator with the same in the adapted one. All functions are pure and
jit-friendly; randomness (which layer a row reads) comes in as arguments.

Pieces and the decisions each one takes:

* `relation_kl` (KD-FSIG Eq. 8, CDC Eq. 3): KL(P_source || P_target) over rows of
  similarities, softmax per row with no temperature, reduced as CDC's official
  code does (utkarshojha/few-shot-gan-adaptation, train.py, the `dist_source` /
  `dist_target` block: `kl_wt * nn.KLDivLoss()(torch.log(dist_target),
  dist_source)`; torch 1.7's default reduction 'mean' averages over all R * K
  elements, not 'batchmean'): weight * mean_ij p_ij (log p_ij - log q_ij). The
  source rows are the teacher and get no gradient (stop_gradient inside). With
  this reduction each row's KL is divided by its key count K, so a longer key
  list (the momentum queue) scales the loss by 1/K at a fixed weight; that is
  what "CDC's reduction" means and we keep it (the issue's alpha = 1e4 is set
  against it).
* `cosine_similarity_matrix`, `off_diagonal_index`, `select_layer_rows`,
  `in_batch_sims`: CDC's similarity rows (each anchor against the other samples
  of the batch, at a layer drawn per row, `feat_ind`), moved here from
  `fsig_jax.methods.cdc`, whose loss now calls them with bit-identical results.
* `ssim_a` / `ssim_a_matrix` (KD-FSIG Eq. 5), SSIM on activations: per channel,
  local means, variances and covariance under a Gaussian window, the SSIM
  product (2 mu1 mu2 + c1)(2 s12 + c2) / ((mu1^2 + mu2^2 + c1)(s1^2 + s2^2 + c2)),
  averaged over positions and channels. The paper gives no window, padding or
  constants; decisions (every one an argument):
    - window: 11 x 11 Gaussian, sigma 1.5, normalised to sum 1, separable, the
      same window for every channel (Wang et al. 2004, as `fsig_jax.metrics.ssim`).
    - padding: 'same' with zeros by default, because the maps are as small as
      4 x 4 and 8 x 8 (an 11 x 11 'valid' window does not fit). The maps are
      padded with zeros before filtering, exactly a zero-padded convolution,
      and the window is NOT renormalised at the border: the local statistics
      are those of the map extended by zero activations, so every variance is
      a true (non-negative) weighted variance of that extended map, and on a
      4 x 4 map each position's window sees the whole map plus zeros. 'valid'
      (no padding, the metric's choice) is the alternative.
    - constants: c1 = 1e-4, c2 = 9e-4, i.e. (0.01 L)^2 and (0.03 L)^2 with
      L = 1, the metric's values on images in [0, 1]. Features are not rescaled
      (no data range is known for activations; the leaky-ReLU features of
      StyleGAN2 are O(1)); the constants then only guard flat regions.
    - arithmetic: the denominators are written as numerator plus a square,
      mu1^2 + mu2^2 = 2 mu1 mu2 + (mu1 - mu2)^2 and s1^2 + s2^2 = 2 s12 +
      var(a1 - a2), with var(a1 - a2) = (E[a1^2] - E[a1 a2]) + (E[a2^2] -
      E[a1 a2]) - (mu1 - mu2)^2. Equal in exact arithmetic to the usual form;
      in float32 it makes identical inputs give exactly 1 (every added term is
      an exact zero, so numerator and denominator are the same float product)
      and makes the pair function exactly symmetric. It also needs one filtered
      map per pair (E[a1 a2]) instead of five: the means and E[a^2] are
      computed once per sample, which is what keeps the (queries x keys)
      matrix cheap.
* `momentum_relation_sims` (KD-FSIG Eqs. 6-7), at one layer: the key lists of
  each anchor row i (latent z_i) on the target and source sides, in the same
  order so that position k of both rows is the same latent:
    - target side: t_j = G_T(z_j) for j != i (with gradient), then m_j =
      G_M(z_j) for every j of the batch, the sample itself included (the
      literal reading of Eq. 7; `moco=True` leaves these out: the MoCo reading,
      momentum keys from earlier batches only), then the queue's G_M features.
    - source side, decision: the key at each position is the frozen G_S
      feature of the same latent as the target key there. So G_S(z_j), j != i,
      then G_S(z_j) for every j again as the counterparts of the m_j (position
      i of that block is the anchor against itself, SSIM-A exactly 1, the
      source's version of "t_i is closest to its own momentum feature"), then,
      for each queue instance, G_S of that instance's latent. The queue
      therefore stores per instance both the G_M and the G_S feature of its
      latent; since G_S is frozen, storing its feature is the same as
      recomputing it (with the same noise) at every step, at no G_S cost.
    - gradient: only t carries one (as anchor and as in-batch key); m, the
      queue and every source feature are stop_gradient inside the function.
* `queue_init` / `queue_push`: a FIFO of instances over any pytree whose leaves
  share the leading (instance) axis (the KD plug-in stores {'m': {layer: ...},
  's': {layer: ...}}). Decision: shifting by concatenation, `concat(q[B:],
  batch)`, rather than a ring buffer with a pointer: the queue is always in
  order (index 0 the oldest instance, -1 the newest), has fixed shapes under
  jit, carries no counter to checkpoint, and costs one copy of Q instances per
  step, nothing next to a generator pass. It holds the last Q instances; with
  Q a multiple of the batch (the paper's 4/8/12/16 at batch 4) whole batches
  enter and leave together.
* `rows_at_layers`: CDC draws one layer per row; computing SSIM-A at every
  layer and then selecting rows (`select_layer_rows`, what CDC does for the
  cheap cosine) costs the number of layers times more. This runs, per row, only
  the drawn layer's row function (`lax.switch`, which executes one branch
  forward and backward). Same values as computing all and selecting.
"""
import functools
from typing import Any, Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from fsig_jax.nn.gaussian import PADDINGS, gaussian_filter, gaussian_window_1d

COS_EPS = 1e-8     # torch.nn.CosineSimilarity default eps (CDC)
SSIM_WINDOW = 11   # decision (Wang et al. 2004): see the module docstring
SSIM_SIGMA = 1.5
SSIM_C1 = 1e-4     # (0.01 * 1)^2
SSIM_C2 = 9e-4     # (0.03 * 1)^2

SimMatrix = Callable[[jax.Array, jax.Array], jax.Array]


# --------------------------------------------------------------------------
# The KL and CDC's similarity rows.

def relation_kl(src_sims: jax.Array, tgt_sims: jax.Array, weight: float = 1.0) -> jax.Array:
  """weight * mean_ij p_ij (log p_ij - log q_ij), p = softmax(src) and q = softmax(tgt) per row.

  KD-FSIG Eq. 8 / CDC Eq. 3 with CDC's reduction (`nn.KLDivLoss()` 'mean' over
  all R * K elements). Rows are the last axis but one: (R, K) similarities, no
  temperature. The source side is a constant (stop_gradient).
  """
  if src_sims.shape != tgt_sims.shape:
    raise ValueError(f'source and target similarities differ in shape: '
                     f'{src_sims.shape} vs {tgt_sims.shape}')
  log_p = jax.nn.log_softmax(jax.lax.stop_gradient(src_sims), axis=-1)
  log_q = jax.nn.log_softmax(tgt_sims, axis=-1)
  return weight * jnp.mean(jnp.exp(log_p) * (log_p - log_q))


def cosine_similarity_matrix(feats: jax.Array, eps: float = COS_EPS) -> jax.Array:
  """(B, ...) -> (B, B) cosine similarities of the flattened samples.

  torch.nn.CosineSimilarity (torch 1.7, CDC's requirements.txt):
  x.y / sqrt(max(|x|^2 |y|^2, eps^2)). The flattening order (NHWC here, NCHW
  in torch) does not matter: both vectors are permuted alike. The Gram matrix
  is taken at full float32 precision (no TF32) so the similarities of
  nearly parallel features are not rounded away.
  """
  f = feats.reshape(feats.shape[0], -1).astype(jnp.float32)
  dots = jnp.matmul(f, f.T, precision=jax.lax.Precision.HIGHEST)
  sq = jnp.diagonal(dots)
  return dots / jnp.sqrt(jnp.maximum(sq[:, None] * sq[None, :], eps * eps))


def cosine_matrix(queries: jax.Array, keys: jax.Array, eps: float = COS_EPS) -> jax.Array:
  """(Nq, ...) x (Nk, ...) -> (Nq, Nk) cosine similarities, torch's formula as
  `cosine_similarity_matrix` (which is this with queries = keys)."""
  q = queries.reshape(queries.shape[0], -1).astype(jnp.float32)
  k = keys.reshape(keys.shape[0], -1).astype(jnp.float32)
  dots = jnp.matmul(q, k.T, precision=jax.lax.Precision.HIGHEST)
  qq = jnp.sum(q * q, axis=1)
  kk = jnp.sum(k * k, axis=1)
  return dots / jnp.sqrt(jnp.maximum(qq[:, None] * kk[None, :], eps * eps))


def off_diagonal_index(b: int) -> np.ndarray:
  """Row i lists j != i in increasing order (CDC train.py's `tmpc` counter)."""
  return np.array([[j for j in range(b) if j != i] for i in range(b)], np.int32)


def drop_self(sims: jax.Array, rows: Optional[np.ndarray] = None) -> jax.Array:
  """(R, B) similarities of anchors `rows` (default all B) to the batch -> (R, B - 1)
  without each anchor's own column."""
  b = sims.shape[1]
  off = off_diagonal_index(b)
  if rows is not None:
    off = off[np.asarray(rows)]
  return jnp.take_along_axis(sims, jnp.asarray(off), axis=1)


def select_layer_rows(sims: jax.Array, layer_idx: jax.Array) -> jax.Array:
  """(L, R, K) per-layer rows -> (R, K), row r taken at layer layer_idx[r]."""
  return sims[layer_idx, jnp.arange(sims.shape[1])]


def in_batch_sims(feats: Sequence[jax.Array], layer_idx: jax.Array,
                  self_sim: Callable[[jax.Array], jax.Array] = cosine_similarity_matrix
                  ) -> jax.Array:
  """CDC's rows: per layer (B, ...) features -> (B, B - 1), row i the similarities
  of sample i to the others at layer layer_idx[i] (train.py `dist[pair1, tmpc]`).

  `self_sim` maps (B, ...) -> (B, B); e.g. `lambda f: ssim_a_matrix(f, f)` for
  KD-FSIG's "+SSIM-A" row (CDC with SSIM-A in place of cosine).
  """
  sims = jnp.stack([self_sim(f) for f in feats])  # (L, B, B)
  return drop_self(select_layer_rows(sims, layer_idx))


def rows_at_layers(row_fn: Callable[[int, int], Any], layer_idx: jax.Array,
                   n_layers: int, n_rows: int) -> Any:
  """Row r of `row_fn(layer_idx[r], r)`, computing only the drawn layer per row.

  `row_fn(layer, row)` (both Python ints) returns a pytree of (1, ...) arrays
  whose shapes do not depend on the layer (e.g. `momentum_relation_sims(...,
  rows=[row])` on that layer's features). Leaves are concatenated over rows.
  """
  outs = []
  for r in range(n_rows):
    branches = [functools.partial(row_fn, layer, r) for layer in range(n_layers)]
    outs.append(jax.lax.switch(layer_idx[r], branches))
  return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *outs)


# --------------------------------------------------------------------------
# SSIM on activations (KD-FSIG Eq. 5).

def _check_padding(shape, window: int, padding: str):
  if padding not in PADDINGS:
    raise ValueError(f'padding must be one of {PADDINGS}, got {padding!r}')
  if len(shape) != 4:
    raise ValueError(f'SSIM-A needs NHWC feature maps, got shape {shape}')
  if padding == 'valid' and min(shape[1:3]) < window:
    raise ValueError(f"'valid' SSIM-A needs maps of at least {window}x{window}, "
                     f"got {shape[1:3]}; use padding='same'")


def _moments(x: jax.Array, g: np.ndarray, padding: str) -> Tuple[jax.Array, jax.Array]:
  """(N, H, W, C) -> local E[x] and E[x^2], each (N, C, H', W')."""
  x = x.astype(jnp.float32)
  return gaussian_filter(x, g, padding), gaussian_filter(x * x, g, padding)


def _ssim_from_moments(mu1, e11, mu2, e22, e12, c1, c2) -> jax.Array:
  """The SSIM map from local moments, averaged over (C, H', W') -> (N,).

  Written so that identical inputs give exactly 1 and swapped inputs exactly
  the same value (module docstring, "arithmetic").
  """
  dm = mu1 - mu2
  m12 = mu1 * mu2
  lum = 2 * m12 + c1                          # 2 mu1 mu2 + c1
  con = 2 * (e12 - m12) + c2                  # 2 s12 + c2
  lum_den = lum + dm * dm                     # mu1^2 + mu2^2 + c1
  con_den = con + ((e11 - e12) + (e22 - e12) - dm * dm)  # s1^2 + s2^2 + c2
  return jnp.mean((lum * con) / (lum_den * con_den), axis=(1, 2, 3))


def ssim_a(a1: jax.Array, a2: jax.Array, *, window: int = SSIM_WINDOW,
           sigma: float = SSIM_SIGMA, c1: float = SSIM_C1, c2: float = SSIM_C2,
           padding: str = 'same') -> jax.Array:
  """SSIM-A of matching feature maps in two NHWC batches -> (N,) float32.

  KD-FSIG Eq. 5; window, padding and constants are decisions (module docstring).
  """
  if a1.shape != a2.shape:
    raise ValueError(f'SSIM-A needs two batches of one shape, got {a1.shape} and {a2.shape}')
  _check_padding(a1.shape, window, padding)
  g = gaussian_window_1d(window, sigma)
  e12 = gaussian_filter(a1.astype(jnp.float32) * a2.astype(jnp.float32), g, padding)
  return _ssim_from_moments(*_moments(a1, g, padding), *_moments(a2, g, padding), e12, c1, c2)


def ssim_a_matrix(queries: jax.Array, keys: jax.Array, *, window: int = SSIM_WINDOW,
                  sigma: float = SSIM_SIGMA, c1: float = SSIM_C1, c2: float = SSIM_C2,
                  padding: str = 'same') -> jax.Array:
  """(Nq, H, W, C) x (Nk, H, W, C) -> (Nq, Nk) SSIM-A of every query to every key.

  The queries' local means and E[q^2] are filtered once; the pairs are taken
  one key at a time (`lax.map` over the keys; the key's moments and E[q k]
  inside) and each is rematerialised in the backward pass (`jax.checkpoint`),
  so a pass holds a few maps of one key and keeps only the keys themselves:
  all keys at once held about twelve (Nq, Nk, H, W, C) maps,
  2.3 GB for one query against 24 keys of 64 x 64 x 512, and was the largest
  part of KD-FSIG's step memory (benchmarks/ssim_a_memory.py and
  step_time.py --memory_only have the numbers). The values are the same up to
  float summation order.
  """
  if queries.shape[1:] != keys.shape[1:]:
    raise ValueError(f'queries {queries.shape} and keys {keys.shape} differ in map shape')
  _check_padding(queries.shape, window, padding)
  g = gaussian_window_1d(window, sigma)
  qf = queries.astype(jnp.float32)
  mu_q, e_qq = _moments(qf, g, padding)

  @jax.checkpoint
  def column(k):  # SSIM-A of every query to one key -> (Nq,)
    mu_k, e_kk = _moments(k[None], g, padding)
    e_qk = gaussian_filter(qf * k.astype(jnp.float32)[None], g, padding)
    return _ssim_from_moments(mu_q, e_qq, mu_k, e_kk, e_qk, c1, c2)

  return jax.lax.map(column, keys).T


# --------------------------------------------------------------------------
# Momentum relation (KD-FSIG Eqs. 6-7).

def momentum_relation_sims(t: jax.Array, m: jax.Array, q: Optional[jax.Array],
                           s: jax.Array, s_q: Optional[jax.Array], *,
                           sim: SimMatrix = ssim_a_matrix, moco: bool = False,
                           rows: Optional[Sequence[int]] = None
                           ) -> Tuple[jax.Array, jax.Array]:
  """Each anchor row's similarities to its keys, source and target side, at one layer.

  Args:
    t: (B, ...) G_T features of the batch latents (with gradient).
    m: (B, ...) G_M (EMA generator) features of the same latents.
    q: (Q, ...) the queue's G_M features, oldest first; None or Q = 0 for none.
    s: (B, ...) frozen G_S features of the batch latents.
    s_q: (Q, ...) G_S features of the queue instances' latents (same order as q).
    sim: (Nq, ...) x (Nk, ...) -> (Nq, Nk); SSIM-A by default.
    moco: leave out the current batch's G_M keys (MoCo reading of Eq. 7).
    rows: the anchors to compute (static ints; default all B).

  Returns:
    (src_sims, tgt_sims), each (R, K): K = (B - 1) + B + Q, or (B - 1) + Q with
    `moco`; key order [other in-batch samples, current batch through G_M, queue],
    the same latent at the same position on both sides (module docstring).
    `relation_kl(src_sims, tgt_sims, alpha)` is then Eq. 8 for these rows.
  """
  b = t.shape[0]
  if b < 2:
    raise ValueError(f'a relation needs at least 2 samples in the batch, got {b}')
  for name, x in (('m', m), ('s', s)):
    if x.shape != t.shape:
      raise ValueError(f'{name} has shape {x.shape}, t has {t.shape}')
  has_queue = q is not None and q.shape[0] > 0
  if has_queue and (s_q is None or s_q.shape != q.shape):
    raise ValueError(f'the source queue must match the G_M queue {q.shape}, got '
                     f'{None if s_q is None else s_q.shape}')
  m, s = jax.lax.stop_gradient(m), jax.lax.stop_gradient(s)
  r = np.arange(b) if rows is None else np.asarray(rows, np.int32)
  t_r, s_r = t[r], s[r]
  ss = sim(s_r, s)                                  # (R, B)
  tgt, src = [drop_self(sim(t_r, t), r)], [drop_self(ss, r)]
  if not moco:
    tgt.append(sim(t_r, m))
    src.append(ss)                                  # counterparts of m_j: G_S(z_j)
  if has_queue:
    tgt.append(sim(t_r, jax.lax.stop_gradient(q)))
    src.append(sim(s_r, jax.lax.stop_gradient(s_q)))
  return jnp.concatenate(src, axis=1), jnp.concatenate(tgt, axis=1)


# --------------------------------------------------------------------------
# The queue.

def _leading(tree, what: str) -> int:
  sizes = {int(np.shape(x)[0]) for x in jax.tree.leaves(tree)}
  if len(sizes) != 1:
    raise ValueError(f'every {what} leaf needs the same leading (instance) size, got {sizes}')
  return sizes.pop()


def queue_init(features: Any) -> Any:
  """A queue of Q instances from a pytree of (Q, ...) features (e.g. {layer: array}),
  index 0 the oldest; stop_gradient."""
  _leading(features, 'queue')
  return jax.tree.map(lambda x: jax.lax.stop_gradient(jnp.asarray(x)), features)


def queue_push(queue: Any, batch: Any) -> Any:
  """Drops the B oldest instances and appends the batch's B at the end (FIFO).

  `batch` has the queue's tree structure with (B, ...) leaves, B <= Q; the
  result holds the last Q instances pushed, oldest first. Fixed shapes, jit-safe.
  """
  if jax.tree.structure(queue) != jax.tree.structure(batch):
    raise ValueError(f'batch structure {jax.tree.structure(batch)} differs from the '
                     f"queue's {jax.tree.structure(queue)}")
  n_q, n_b = _leading(queue, 'queue'), _leading(batch, 'batch')
  if n_b > n_q:
    raise ValueError(f'cannot push {n_b} instances into a queue of {n_q}')

  def push(old, new):
    if old.shape[1:] != new.shape[1:]:
      raise ValueError(f'queue entries are {old.shape[1:]}, pushed {new.shape[1:]}')
    new = jax.lax.stop_gradient(new).astype(old.dtype)
    return jnp.concatenate([old[n_b:], new], axis=0)

  return jax.tree.map(push, queue, batch)
