"""EWC: Fisher against an explicit per-sample loop, the penalty by hand, engine steps."""
import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from engine_utils import TINY, tiny_hparams, tiny_images
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods.base import compose
from fsig_jax.methods.ewc import ewc, ewc_penalty, fisher_diagonal
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.stylegan2 import Discriminator, Generator

N_FISHER, CHUNK = 3, 2  # 3 samples in chunks of 2: exercises the padded last chunk


@pytest.fixture(scope='module')
def bundle():
  return jax.jit(functools.partial(init_bundle, TINY))(jax.random.PRNGKey(0))


def test_fisher_equals_explicit_per_sample_loop(bundle):
  g, d = bundle.nets['G'], bundle.nets['D']
  zs = jax.random.normal(jax.random.PRNGKey(5), (N_FISHER, TINY.z_dim))
  keys = jax.random.split(jax.random.PRNGKey(6), N_FISHER)
  fisher = fisher_diagonal(TINY, g['params'], g['buffers'], d['params'], zs, keys, chunk=CHUNK)

  # Independent reference through the plain module calls: one image at a time,
  # loss softplus(-D(G(z))) (RICK/AdAM `g_nonsaturating_loss` on a batch of 1),
  # squared gradient, averaged over the samples.
  def nll(gp, z, k):
    img = Generator(TINY).apply({'params': gp, 'buffers': g['buffers']}, z[None],
                                noise_mode='random', rngs={'noise': k})
    return jnp.log1p(jnp.exp(-Discriminator(TINY).apply({'params': d['params']}, img)[0, 0]))

  grad = jax.jit(jax.grad(nll))
  want = jax.tree.map(lambda p: np.zeros(p.shape, np.float64), g['params'])
  mean_grad = jax.tree.map(lambda p: np.zeros(p.shape, np.float64), g['params'])
  for i in range(N_FISHER):
    gi = grad(g['params'], zs[i], keys[i])
    want = jax.tree.map(lambda a, x: a + np.asarray(x, np.float64) ** 2 / N_FISHER, want, gi)
    mean_grad = jax.tree.map(lambda a, x: a + np.asarray(x, np.float64) / N_FISHER, mean_grad, gi)

  flat_got = jax.tree_util.tree_leaves_with_path(fisher)
  flat_want = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(want)}
  assert len(flat_got) == len(flat_want)
  nonzero = 0
  for path, x in flat_got:
    w = flat_want[jax.tree_util.keystr(path)]
    np.testing.assert_allclose(np.asarray(x), w, rtol=2e-3, atol=1e-12 + 1e-4 * np.abs(w).max(),
                               err_msg=jax.tree_util.keystr(path))
    nonzero += bool(np.any(w > 0))
  assert nonzero > 0.9 * len(flat_got)  # the estimate is not trivially zero
  # The reference tells per-sample squares from the square of a batch-mean gradient.
  total = sum(float(np.sum(x)) for x in jax.tree.leaves(want))
  squared_mean = sum(float(np.sum(x ** 2)) for x in jax.tree.leaves(mean_grad))
  assert squared_mean < 0.9 * total


def test_penalty_by_hand_and_zero_at_source():
  p = {'a': jnp.array([1.0, 2.0, -1.0]), 'b': {'c': jnp.array([[0.5, 0.0], [1.0, 3.0]])}}
  s = {'a': jnp.array([0.0, 2.5, -1.0]), 'b': {'c': jnp.array([[0.0, 1.0], [1.0, 1.0]])}}
  f = {'a': jnp.array([2.0, 4.0, 7.0]), 'b': {'c': jnp.array([[1.0, 0.5], [9.0, 0.25]])}}
  want = 2 * 1 + 4 * 0.25 + 7 * 0 + 1 * 0.25 + 0.5 * 1 + 9 * 0 + 0.25 * 4
  assert float(ewc_penalty(p, s, f)) == pytest.approx(want)
  assert float(ewc_penalty(s, s, f)) == 0.0


def test_three_engine_steps(bundle):
  # Path length and R1 are off: they are not EWC's business and dominate compile time.
  hp = tiny_hparams(pl_weight=0.0, r1_gamma=0.0)
  method = compose(ewc(weight=5e8, n_samples=N_FISHER, chunk=CHUNK))
  state = init_state(bundle, hp, method, jax.random.PRNGKey(1))
  fisher = jax.tree.map(np.asarray, state['method']['ewc']['fisher'])
  assert jax.tree.structure(fisher) == jax.tree.structure(state['G']['net'])
  step = make_train_step(TINY, hp, method)
  images = jnp.asarray(tiny_images(hp.batch_size))
  metrics, before = [], []
  for _ in range(3):
    before.append(jax.device_get(state['G']['net']))  # G at this step's G update
    state, m = step(state, images)
    metrics.append({k: float(v) for k, v in m.items()})
  assert all('g_ewc' in m for m in metrics)
  assert all(np.isfinite(v) for m in metrics for v in m.values())
  assert metrics[0]['g_ewc'] == 0.0  # G is still the source at the first G update
  # The logged term is lambda * sum_i F_i (theta_i - theta_S,i)^2 over every
  # parameter, computed here by a plain loop in float64.
  source = jax.device_get(state['source_G'])
  flat = lambda t: [np.asarray(x, np.float64) for x in jax.tree.leaves(t)]  # noqa: E731
  for i in (1, 2):
    want = 5e8 * sum(float(np.sum(f * (p - s) ** 2)) for f, p, s in zip(
        flat(fisher), flat(before[i]), flat(source)))
    assert want > 0
    assert metrics[i]['g_ewc'] == pytest.approx(want, rel=1e-4), i
  # The Fisher is fixed method state: the step carries it through unchanged.
  for a, b in zip(jax.tree.leaves(fisher), jax.tree.leaves(state['method']['ewc']['fisher'])):
    np.testing.assert_array_equal(a, np.asarray(b))


def test_fisher_cache_reuses_the_estimate_bit_identically(bundle, tmp_path, monkeypatch):
  ewc_module = sys.modules['fsig_jax.methods.ewc']  # the package exports the function 'ewc'
  from fsig_jax.errors import FsigError
  hp = tiny_hparams(pl_weight=0.0, r1_gamma=0.0)
  cache = str(tmp_path / 'cache')
  fisher_of = lambda key, **kw: jax.device_get(init_state(  # noqa: E731
      bundle, hp, compose(ewc(n_samples=N_FISHER, chunk=CHUNK, **kw)),
      jax.random.PRNGKey(key))['method']['ewc']['fisher'])
  first = fisher_of(1, fisher_cache=cache)
  files = sorted(os.listdir(cache))
  assert len(files) == 1 and files[0].startswith('ewc_fisher_'), files
  calls = []
  real = ewc_module.fisher_diagonal
  monkeypatch.setattr(ewc_module, 'fisher_diagonal', lambda *a, **k: calls.append(1) or real(*a, **k))
  again = fisher_of(1, fisher_cache=cache)
  assert not calls  # read back, not estimated
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
    np.testing.assert_array_equal(a, b)
  assert jax.tree.structure(first) == jax.tree.structure(again)
  # The same values as without the cache.
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(fisher_of(1)), strict=True):
    np.testing.assert_array_equal(a, b)
  # Another seed (other latents and noise) is another estimate and another file.
  other = fisher_of(2, fisher_cache=cache)
  assert len(calls) == 2 and len(os.listdir(cache)) == 2
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first),
                                                      jax.tree.leaves(other)))
  # A damaged file names itself and the fix.
  path = os.path.join(cache, files[0])
  with open(path, 'wb') as f:
    f.write(b'not a zip')
  with pytest.raises(FsigError, match='delete the file'):
    fisher_of(1, fisher_cache=cache)
