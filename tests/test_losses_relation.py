"""Relation distillation pieces: SSIM-A, the KL, momentum keys, the queue (KD-FSIG, CDC)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsig_jax.losses import relation as rel
from fsig_jax.metrics import ssim as ssim_lib
from fsig_jax.nn.gaussian import gaussian_filter, gaussian_window_1d


def _maps(seed, shape, scale=1.0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale, jnp.float32)


# ---------------------------------------------------------------- SSIM-A

@pytest.mark.parametrize('channels', [1, 3])
def test_ssim_a_valid_matches_the_metric(channels):
  """The metric maps [-1, 1] images to [0, 1] and uses C = (0.01)^2, (0.03)^2 (L = 1):
  SSIM-A with 'valid' padding on the mapped images and c1 = 1e-4, c2 = 9e-4 is the
  same quantity (only the float32 arrangement of the formula differs)."""
  rng = np.random.default_rng(0)
  x = np.tanh(rng.normal(size=(3, 14, 17, channels))).astype(np.float32)
  y = np.clip(x + 0.3 * rng.normal(size=x.shape), -1, 1).astype(np.float32)
  want = np.asarray(ssim_lib.ssim(x, y))
  got = np.asarray(rel.ssim_a((x + 1) / 2, (y + 1) / 2, padding='valid', c1=1e-4, c2=9e-4))
  np.testing.assert_allclose(got, want, atol=2e-6)
  assert 0.2 < want.min() and want.max() < 0.95  # a non-trivial comparison


def test_ssim_a_same_padding_is_zero_padded_valid():
  """'same' is 'valid' SSIM-A on the maps padded with zeros (window not renormalised),
  read at the original positions."""
  a, b = _maps(1, (2, 4, 4, 3)), _maps(2, (2, 4, 4, 3))
  got = rel.ssim_a(a, b)
  g = gaussian_window_1d(11, 1.5)
  # The usual SSIM formula, local statistics by 'valid' filtering of zero-padded maps.
  mu = lambda x: gaussian_filter(  # noqa: E731
      jnp.pad(x, ((0, 0), (5, 5), (5, 5), (0, 0))), g, 'valid')
  m1, m2 = mu(a), mu(b)
  s11, s22, s12 = mu(a * a) - m1 ** 2, mu(b * b) - m2 ** 2, mu(a * b) - m1 * m2
  smap = ((2 * m1 * m2 + 1e-4) * (2 * s12 + 9e-4)
          / ((m1 ** 2 + m2 ** 2 + 1e-4) * (s11 + s22 + 9e-4)))
  np.testing.assert_allclose(got, smap.mean(axis=(1, 2, 3)), atol=1e-6)
  assert rel.ssim_a(a, b).shape == (2,)


def test_ssim_a_identity_and_symmetry_exact():
  """Exactly 1 and exactly symmetric in float32 (the formula is written so that, for
  identical inputs, every extra denominator term is an exact zero)."""
  for seed, shape, scale in ((3, (4, 4, 4, 8), 1.0), (4, (2, 8, 8, 5), 30.0),
                             (5, (3, 16, 16, 2), 1e-3)):
    a, b = _maps(seed, shape, scale), _maps(seed + 10, shape, scale)
    for padding in ('same', 'valid') if shape[1] >= 11 else ('same',):
      assert np.all(np.asarray(rel.ssim_a(a, a, padding=padding)) == 1.0)
      assert np.all(np.asarray(rel.ssim_a(a, b, padding=padding))
                    == np.asarray(rel.ssim_a(b, a, padding=padding)))
      assert np.all(np.asarray(rel.ssim_a(a, b, padding=padding)) < 1.0)
  a = _maps(6, (3, 4, 4, 8))
  assert np.all(np.asarray(jax.jit(rel.ssim_a)(a, a)) == 1.0)
  # The matrix: its diagonal on a self-comparison, within 1e-6 (query and key moments
  # are filtered in different batches, so bit-equality is not promised there).
  mat = rel.ssim_a_matrix(a, a)
  np.testing.assert_allclose(np.diagonal(mat), 1.0, atol=1e-6)
  np.testing.assert_allclose(mat, mat.T, atol=1e-6)


def test_ssim_a_matrix_matches_pairs_and_errors():
  q, k = _maps(7, (3, 8, 8, 4)), _maps(8, (5, 8, 8, 4))
  mat = rel.ssim_a_matrix(q, k)
  assert mat.shape == (3, 5)
  want = np.array([[float(rel.ssim_a(q[i:i + 1], k[j:j + 1])[0]) for j in range(5)]
                   for i in range(3)])
  np.testing.assert_allclose(mat, want, atol=1e-6)
  with pytest.raises(ValueError, match="'valid' SSIM-A needs maps of at least 11x11"):
    rel.ssim_a(q, q, padding='valid')
  with pytest.raises(ValueError, match='padding must be one of'):
    rel.ssim_a_matrix(q, k, padding='reflect')
  with pytest.raises(ValueError, match='differ in map shape'):
    rel.ssim_a_matrix(q, k[:, :4])


# ---------------------------------------------------------------- the KL

def test_relation_kl_by_hand():
  src = np.array([[0.1, 0.5, -0.2], [0.3, 0.3, 0.9]])
  tgt = np.array([[0.4, -0.1, 0.0], [0.2, 0.8, 0.1]])
  p = np.exp(src) / np.exp(src).sum(1, keepdims=True)
  q = np.exp(tgt) / np.exp(tgt).sum(1, keepdims=True)
  want = 7.0 * np.mean(p * (np.log(p) - np.log(q)))  # KLDivLoss 'mean' over all 6 elements
  got = rel.relation_kl(jnp.asarray(src, jnp.float32), jnp.asarray(tgt, jnp.float32), 7.0)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)
  assert float(rel.relation_kl(jnp.asarray(src), jnp.asarray(src))) == pytest.approx(0, abs=1e-7)
  g_src = jax.grad(lambda s: rel.relation_kl(s, jnp.asarray(tgt, jnp.float32)))(
      jnp.asarray(src, jnp.float32))
  assert float(jnp.abs(g_src).max()) == 0.0  # the source rows are the teacher


def test_in_batch_and_layer_rows():
  feats = [_maps(10, (4, 2, 2, 3)), _maps(11, (4, 3, 3, 1))]
  layer_idx = jnp.array([1, 0, 0, 1])
  rows = rel.in_batch_sims(feats, layer_idx)
  full = [rel.cosine_similarity_matrix(f) for f in feats]
  for i in range(4):
    want = [full[int(layer_idx[i])][i, j] for j in range(4) if j != i]
    np.testing.assert_allclose(rows[i], want, rtol=1e-6)
  # drop_self with a subset of anchors: row r leaves out column rows[r].
  sub = rel.drop_self(full[0][np.array([2, 3])], np.array([2, 3]))
  f0 = np.asarray(full[0])
  np.testing.assert_array_equal(sub, [f0[2, [0, 1, 3]], f0[3, [0, 1, 2]]])


# ---------------------------------------------------------------- momentum relation

B, Q, SHAPE = 3, 4, (4, 4, 2)


def _momentum_inputs(seed=20):
  t, m, s = (_maps(seed + i, (B,) + SHAPE) for i in range(3))
  q, s_q = _maps(seed + 3, (Q,) + SHAPE), _maps(seed + 4, (Q,) + SHAPE)
  return t, m, q, s, s_q


@pytest.mark.parametrize('moco', [False, True])
def test_momentum_keys_by_position(moco):
  t, m, q, s, s_q = _momentum_inputs()
  src, tgt = rel.momentum_relation_sims(t, m, q, s, s_q, moco=moco)
  k = (B - 1) + (0 if moco else B) + Q
  assert src.shape == tgt.shape == (B, k)
  pair = lambda x, y: float(rel.ssim_a(x[None], y[None])[0])  # noqa: E731
  for i in range(B):
    others = [j for j in range(B) if j != i]
    want_t = [pair(t[i], t[j]) for j in others]
    want_s = [pair(s[i], s[j]) for j in others]
    if not moco:
      want_t += [pair(t[i], m[j]) for j in range(B)]
      want_s += [pair(s[i], s[j]) for j in range(B)]  # G_S of the same latents
    want_t += [pair(t[i], q[j]) for j in range(Q)]
    want_s += [pair(s[i], s_q[j]) for j in range(Q)]
    np.testing.assert_allclose(tgt[i], want_t, atol=1e-6)
    np.testing.assert_allclose(src[i], want_s, atol=1e-6)
  if not moco:  # the anchor against itself on the source side
    np.testing.assert_allclose(np.asarray(src)[np.arange(B), (B - 1) + np.arange(B)], 1.0,
                               atol=1e-6)
  # No queue: only the in-batch keys (and the G_M ones); rows subset agrees.
  src0, tgt0 = rel.momentum_relation_sims(t, m, None, s, None, moco=moco)
  np.testing.assert_allclose(tgt0, tgt[:, :k - Q], atol=1e-6)
  src1, tgt1 = rel.momentum_relation_sims(t, m, q, s, s_q, moco=moco, rows=[2])
  np.testing.assert_allclose(tgt1, tgt[2:], atol=1e-6)
  np.testing.assert_allclose(src1, src[2:], atol=1e-6)


def test_momentum_gradients_reach_only_target_batch():
  t, m, q, s, s_q = _momentum_inputs()

  def loss(t, m, q, s, s_q):
    src, tgt = rel.momentum_relation_sims(t, m, q, s, s_q)
    return rel.relation_kl(src, tgt, 1e4)

  grads = jax.grad(loss, argnums=(0, 1, 2, 3, 4))(t, m, q, s, s_q)
  assert float(jnp.abs(grads[0]).max()) > 0.0
  assert all(float(jnp.abs(g).max()) == 0.0 for g in grads[1:])
  # The in-batch keys themselves carry gradient: with only the anchor row 0, sample 1
  # enters only as a key (t[1] through G_T), and still gets a gradient.
  g_key = jax.grad(lambda t: rel.relation_kl(
      *rel.momentum_relation_sims(t, m, q, s, s_q, rows=[0]), 1e4))(t)
  assert float(jnp.abs(g_key[1]).max()) > 0.0
  with pytest.raises(ValueError, match='source queue must match'):
    rel.momentum_relation_sims(t, m, q, s, None)


def test_rows_at_layers_equals_all_then_select():
  layers = [_momentum_inputs(40), _momentum_inputs(50)]
  layers[1] = tuple(x[..., :1] * 3.0 for x in layers[1])  # another map shape per layer
  layer_idx = jnp.array([1, 0, 1])

  def full(layer):
    return rel.momentum_relation_sims(*layers[layer])

  want = [rel.select_layer_rows(jnp.stack([full(0)[side], full(1)[side]]), layer_idx)
          for side in (0, 1)]
  row_fn = lambda layer, r: rel.momentum_relation_sims(*layers[layer], rows=[r])  # noqa: E731
  got = jax.jit(lambda idx: rel.rows_at_layers(row_fn, idx, 2, B))(layer_idx)
  for side in (0, 1):
    np.testing.assert_allclose(got[side], want[side], atol=1e-6)


# ---------------------------------------------------------------- the queue

def test_queue_holds_last_instances_in_order_under_jit():
  n, b = 6, 2  # Q = 6 instances, batches of 2 (also a Q not divisible by 4 below)
  ids = lambda start, k: jnp.arange(start, start + k, dtype=jnp.float32)  # noqa: E731

  def tree(x):  # two layers of different shapes; each instance's values are its id
    return {'b4': jnp.broadcast_to(x[:, None, None, None], (x.shape[0], 4, 4, 3)),
            'b8': {'m': jnp.broadcast_to(x[:, None], (x.shape[0], 5))}}

  queue = rel.queue_init(tree(ids(-n, n)))
  push = jax.jit(rel.queue_push)
  for step in range(7):  # 14 instances through a 6-slot queue: wraps more than twice
    queue = push(queue, tree(ids(2 * step, b)))
    last = np.arange(2 * step + b - n, 2 * step + b, dtype=np.float32)
    np.testing.assert_array_equal(queue['b4'][:, 0, 0, 0], last)
    np.testing.assert_array_equal(queue['b4'], tree(jnp.asarray(last))['b4'])
    np.testing.assert_array_equal(queue['b8']['m'][:, 0], last)
  q3 = rel.queue_init({'f': jnp.zeros((5, 1))})
  for step in range(3):
    q3 = push(q3, {'f': jnp.arange(3 * step + 1, 3 * step + 4, dtype=jnp.float32)[:, None]})
  np.testing.assert_array_equal(q3['f'][:, 0], [5, 6, 7, 8, 9])


def test_queue_is_stop_gradient_and_validates():
  x = jnp.ones((2, 3))
  g = jax.grad(lambda x: jnp.sum(rel.queue_push(rel.queue_init({'a': jnp.zeros((4, 3))}),
                                                {'a': x * 2.0})['a']))(x)
  assert float(jnp.abs(g).max()) == 0.0
  with pytest.raises(ValueError, match='same leading'):
    rel.queue_init({'a': jnp.zeros((4, 3)), 'b': jnp.zeros((3, 3))})
  with pytest.raises(ValueError, match='cannot push 5'):
    rel.queue_push({'a': jnp.zeros((4, 3))}, {'a': jnp.zeros((5, 3))})
  with pytest.raises(ValueError, match='structure'):
    rel.queue_push({'a': jnp.zeros((4, 3))}, {'b': jnp.zeros((2, 3))})


@pytest.mark.parametrize('padding', ['same', 'valid'])
def test_gaussian_filter_and_its_gradient_equal_a_2d_convolution(padding):
  """The separable filter (two 1-D passes) and its gradient against one 2-D
  convolution with the outer-product window, per channel, zero padding for
  'same'; an asymmetric window too."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 13, 12, 3))
  for g in (gaussian_window_1d(5, 1.5), np.asarray([0.1, 0.2, 0.7], np.float32)):
    k, pad = len(g), (len(g) - 1) // 2 if padding == 'same' else 0

    def ref(x):
      y = x.transpose(0, 3, 1, 2).reshape(-1, 1, 13, 12)
      w = jnp.asarray(np.outer(g, g)).reshape(1, 1, k, k)
      y = jax.lax.conv_general_dilated(y, w, (1, 1), [(pad, pad)] * 2,
                                       dimension_numbers=('NCHW', 'OIHW', 'NCHW'),
                                       precision=jax.lax.Precision.HIGHEST)
      return y.reshape(2, 3, y.shape[2], y.shape[3])

    got = gaussian_filter(x, g, padding)
    np.testing.assert_allclose(got, ref(x), atol=1e-5)
    ct = jax.random.normal(jax.random.PRNGKey(1), got.shape)
    g_got = jax.grad(lambda x: jnp.sum(gaussian_filter(x, g, padding) * ct))(x)
    g_ref = jax.grad(lambda x: jnp.sum(ref(x) * ct))(x)
    np.testing.assert_allclose(g_got, g_ref, atol=1e-5)
