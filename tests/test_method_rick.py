"""RICK: per-filter Fisher reduction, quantile decisions, masks in the jitted
step (pruned stays zero, frozen never changes), warm-up, resume, the plot."""
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import fsig_jax
from engine_utils import TINY, leaves_with_paths, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax.engine import loop, run_config
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import fisher, get_method
from fsig_jax.methods.rick import d_layers, decide, filter_importance, g_layers, rick


def test_mean_squared_grads_is_per_sample():
  # loss(p, x) = p . x  ->  grad = x, so F = mean_n x_n^2 (not (mean_n x_n)^2).
  xs = jnp.array([[1.0, -2.0], [3.0, 2.0], [0.0, 1.0]])
  f = fisher.mean_squared_grads(lambda p, x: jnp.dot(p, x), jnp.zeros(2), xs, chunk=2)
  np.testing.assert_allclose(f, np.mean(np.square(np.asarray(xs)), axis=0), rtol=1e-6)


def test_filter_importance_by_hand():
  b = tiny_bundle()
  rng = np.random.default_rng(0)
  rand = lambda t: jax.tree.map(lambda x: rng.random(x.shape).astype(np.float32), t)  # noqa: E731
  fg, fd = rand(b.nets['G_ema']['params']), rand(b.nets['D']['params'])
  imp = filter_importance(fg, fd)
  # rosinality convs.* = our synthesis b8, b16 conv0/conv1 (not b4's conv1).
  assert sorted(imp['g_conv']) == [('b16', 'conv0'), ('b16', 'conv1'), ('b8', 'conv0'),
                                   ('b8', 'conv1')]
  assert sorted(imp['d']) == [('b16', 'conv0'), ('b16', 'conv1'), ('b16', 'skip'),
                              ('b8', 'conv0'), ('b8', 'conv1'), ('b8', 'skip')]
  layer = fg['synthesis']['b8']['conv0']
  k = layer['kernel']  # (kh, kw, in, out); official: weight (1, out, in, kh, kw).mean((0,2,3,4))
  expect = np.array([k[..., o].mean() for o in range(k.shape[-1])])
  np.testing.assert_allclose(imp['g_conv'][('b8', 'conv0')], expect, rtol=1e-5)
  a = layer['affine']  # official: (modulation.weight.mean(1) + modulation.bias) / 2
  expect = np.array([(a['kernel'][:, i].mean() + a['bias'][i]) / 2
                     for i in range(a['bias'].shape[0])])
  np.testing.assert_allclose(imp['g_fc'][('b8', 'conv0')], expect, rtol=1e-5)
  c = fd['b16']['conv1']
  expect = np.array([(c['kernel'][..., o].mean() + c['bias'][o]) / 2
                     for o in range(c['bias'].shape[0])])
  np.testing.assert_allclose(imp['d'][('b16', 'conv1')], expect, rtol=1e-5)
  s = fd['b8']['skip']['kernel']
  np.testing.assert_allclose(imp['d'][('b8', 'skip')],
                             [s[..., o].mean() for o in range(s.shape[-1])], rtol=1e-5)


def test_quantile_decisions_on_a_known_tree():
  pool = {('b8', 'conv0'): jnp.arange(10.0), ('b8', 'skip'): jnp.arange(10.0, 20.0)}
  # Pooled 0..19: percentile(75) = 14.25, percentile(10) = 1.9 (linear, as np.percentile).
  freeze, prune = decide(pool, 75.0, 10.0)
  assert np.flatnonzero(freeze[('b8', 'conv0')]).tolist() == []
  assert np.flatnonzero(freeze[('b8', 'skip')]).tolist() == [5, 6, 7, 8, 9]  # 15..19
  assert np.flatnonzero(prune[('b8', 'conv0')]).tolist() == [0, 1]  # 0, 1 <= 1.9
  assert not np.any(prune[('b8', 'skip')])
  # At a tie the official code prunes `<=` for convs and `<` for D skip convs.
  tie = {('b8', 'conv0'): jnp.array([1.0, 2.0]), ('b8', 'skip'): jnp.array([1.0, 3.0])}
  _, prune = decide(tie, 100.0, 0.0)  # prune line = min = 1.0
  assert prune[('b8', 'conv0')].tolist() == [True, False]
  assert prune[('b8', 'skip')].tolist() == [False, False]


def test_bad_arguments_are_clear():
  with pytest.raises(ValueError, match='prune_quantile <= fisher_quantile'):
    rick(fisher_quantile=10, prune_quantile=20)
  with pytest.raises(ValueError, match='fisher_freq must be an integer >= 1'):
    rick(fisher_freq=0)


def _run(n_steps, **kw):
  """States after each of n_steps RICK steps on the tiny model."""
  hp = tiny_hparams(batch_size=2)
  method = get_method('rick', rick=dict(chunk=4, **kw))
  state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(0), images=tiny_images(8))
  step = make_train_step(TINY, hp, method, donate=False)
  real = jnp.asarray(tiny_images(2, seed=5))
  states = [jax.device_get(state)]
  for _ in range(n_steps):
    state, metrics = step(state, real)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    states.append(jax.device_get(state))
  return states


@pytest.fixture(scope='module')
def run():
  # warm-up 2 steps, estimates before steps 2 and 4; large quantiles so every
  # category is populated in a tiny network.
  return _run(6, warmup_iter=2, fisher_freq=2, num_fisher_img=2, fisher_quantile=60.0,
              prune_quantile=20.0)


def _leaf(tree, *names):
  for n in names:
    tree = tree[n]
  return np.asarray(tree)


def test_warm_up_trains_only_the_d_epilogue(run):
  s0, s1, s2 = run[:3]  # steps 0 and 1 are warm-up; the first estimate follows step 1
  g0, g1 = leaves_with_paths(s0['G']['net']), leaves_with_paths(s1['G']['net'])
  for k in g0:
    np.testing.assert_array_equal(g0[k], g1[k], err_msg=k)
  d0, d1 = leaves_with_paths(s0['D']['net']), leaves_with_paths(s1['D']['net'])
  changed = {k for k in d0 if not np.array_equal(d0[k], d1[k])}
  assert changed and all(k.startswith("['b4']") for k in changed), changed
  # The estimate prunes at once; otherwise G is still the source after warm-up.
  assert int(s2['method']['rick']['n_estimates']) == 1
  keep = leaves_with_paths(jax.tree.map(lambda p: 1 - p, s2['method']['rick']['prune']['G']))
  g2 = leaves_with_paths(s2['G']['net'])
  for k in g0:
    np.testing.assert_array_equal(g0[k] * keep[k], g2[k], err_msg=k)


def test_pruned_filters_stay_exactly_zero(run):
  for side, layers in (('G', [('synthesis', b, c) for b, c in g_layers(run[0]['G']['net'])]),
                       ('D', d_layers(run[0]['D']['net']))):
    total = 0
    for s in run[2:]:
      prune = s['method']['rick']['prune'][side]
      for layer in layers:
        mask = _leaf(prune, *layer, 'kernel').astype(bool)
        total += mask.sum()
        kernel = _leaf(s[side]['net'], *layer, 'kernel')
        assert np.all(kernel[..., mask] == 0), (side, layer)
    assert total > 0, f'no {side} filter was pruned: the test would not check anything'
  # Pruned sets only grow (united across estimates).
  p2 = leaves_with_paths(run[2]['method']['rick']['prune'])
  p6 = leaves_with_paths(run[6]['method']['rick']['prune'])
  for k in p2:
    assert np.all(p6[k] >= p2[k]), k


def test_frozen_filters_and_untrained_layers_never_change(run):
  # Steps 2 and 3 run under the masks of the estimate before step 2.
  # The estimate for step 4 runs at the end of step 3 and prunes at once, so a
  # filter it prunes (pruned sets are united) is zeroed in run[4]: not compared.
  before, after = run[2], run[4]
  freeze = before['method']['rick']['freeze']
  later = after['method']['rick']['prune']
  n_frozen = 0
  for b, c in g_layers(before['G']['net']):
    m = (_leaf(freeze['G'], 'synthesis', b, c, 'kernel').astype(bool) &
         ~_leaf(later['G'], 'synthesis', b, c, 'kernel').astype(bool))
    n_frozen += m.sum()
    k0 = _leaf(before['G']['net'], 'synthesis', b, c, 'kernel')[..., m]
    k1 = _leaf(after['G']['net'], 'synthesis', b, c, 'kernel')[..., m]
    np.testing.assert_array_equal(k0, k1)
    fm = _leaf(freeze['G'], 'synthesis', b, c, 'affine', 'bias').astype(bool)
    np.testing.assert_array_equal(_leaf(before['G']['net'], 'synthesis', b, c, 'affine', 'bias')[fm],
                                  _leaf(after['G']['net'], 'synthesis', b, c, 'affine', 'bias')[fm])
  for b, c in d_layers(before['D']['net']):
    m = (_leaf(freeze['D'], b, c, 'kernel').astype(bool) &
         ~_leaf(later['D'], b, c, 'kernel').astype(bool))
    n_frozen += m.sum()
    np.testing.assert_array_equal(_leaf(before['D']['net'], b, c, 'kernel')[..., m],
                                  _leaf(after['D']['net'], b, c, 'kernel')[..., m])
  assert n_frozen > 0
  # Outside the screened layers: mapping, const, 4x4 conv, ToRGBs and fromRGB never train.
  for names in (('mapping', 'fc0', 'kernel'), ('synthesis', 'b4', 'const'),
                ('synthesis', 'b4', 'conv1', 'kernel'), ('synthesis', 'b16', 'torgb', 'kernel')):
    np.testing.assert_array_equal(_leaf(run[0]['G']['net'], *names),
                                  _leaf(run[-1]['G']['net'], *names))
  np.testing.assert_array_equal(_leaf(run[0]['D']['net'], 'b16', 'fromrgb', 'kernel'),
                                _leaf(run[-1]['D']['net'], 'b16', 'fromrgb', 'kernel'))
  # ...while fine-tuned filters do change.
  g0, g1 = leaves_with_paths(before['G']['net']), leaves_with_paths(after['G']['net'])
  assert any(not np.array_equal(g0[k], g1[k]) for k in g0)


def tiny_config(steps, workdir_kw=None):
  c = run_config.default_config()
  c.steps = steps
  c.hparams.batch_size = 2
  c.hparams.d_reg_every = 2
  c.hparams.g_reg_every = 2
  c.log_every = 1
  c.checkpoint_every = 2
  c.sample_every = 0
  c.method.names = 'rick'
  c.method.kwargs = ml_collections.ConfigDict({'rick': dict(
      warmup_iter=1, fisher_freq=2, num_fisher_img=1, chunk=2, fisher_quantile=60.0,
      prune_quantile=20.0)})
  return c


def test_masks_survive_resume_and_the_plot_is_written(tmp_path):
  def final(config, wd):
    state, _ = loop.train(config, wd, bundle=tiny_bundle(), images=tiny_images(8))
    return leaves_with_paths(jax.device_get(state))
  full = final(tiny_config(5), str(tmp_path / 'full'))
  wd = str(tmp_path / 'wd')
  final(tiny_config(3), wd)
  resumed = final(tiny_config(5), wd)
  assert full.keys() == resumed.keys()
  for k in full:
    np.testing.assert_array_equal(full[k], resumed[k], err_msg=k)
  assert os.path.getsize(os.path.join(wd, 'rick_filters.png')) > 1000
  with open(os.path.join(wd, 'rick_filters.json')) as f:
    hist = json.load(f)
  assert hist['steps'] == [1, 3, 5]  # at warm-up end, then every 2 steps (before the step)
  assert 'G.b8.conv0.conv' in hist['pruned'] and 'D.b16.skip' in hist['frozen']


def test_ewc_plus_rick_from_adapt():
  adapted, state = fsig_jax.adapt(
      tiny_bundle(), tiny_images(4), method=('ewc', 'rick'), steps=2, batch_size=2,
      r1_gamma=0.0, pl_weight=0.0,  # regularisers with masks: see the `run` fixture
      method_kwargs={'ewc': dict(n_samples=4, chunk=4),
                     'rick': dict(warmup_iter=0, fisher_freq=2, num_fisher_img=1, chunk=2,
                                  prune_quantile=20.0)})
  ms = jax.device_get(state['method'])
  assert set(ms) == {'ewc', 'rick'}
  assert int(ms['rick']['n_estimates']) == 2  # warm-up 0: at init, then before step 2
  mask = ms['rick']['prune']['G']['synthesis']['b16']['conv1']['kernel'].astype(bool)
  kernel = np.asarray(adapted.nets['G']['params']['synthesis']['b16']['conv1']['kernel'])
  assert mask.any() and np.all(kernel[..., mask] == 0)


def test_adam_plus_rick_from_adapt():
  """AdAM's modulated adaptation with RICK's masks: pruned filters stay zero in the
  exported (folded) model."""
  adapted, state = fsig_jax.adapt(
      tiny_bundle(), tiny_images(4), method=('adam', 'rick'), steps=3, batch_size=2,
      r1_gamma=0.0, pl_weight=0.0,  # regularisers with masks: see the `run` fixture
      method_kwargs={'adam': dict(probe_steps=2, num_batch_fisher=1),
                     'rick': dict(warmup_iter=1, fisher_freq=1, num_fisher_img=1, chunk=2,
                                  prune_quantile=20.0)})
  ms = jax.device_get(state['method'])
  assert set(ms) == {'adam', 'rick'} and int(ms['rick']['n_estimates']) == 3
  mask = ms['rick']['prune']['G']['synthesis']['b16']['conv1']['kernel'].astype(bool)
  kernel = np.asarray(adapted.nets['G']['params']['synthesis']['b16']['conv1']['kernel'])
  assert mask.any() and np.all(kernel[..., mask] == 0)


def test_rick_runs_on_progan():
  """The paper's second architecture: same rules over ProGAN's layers (no G FC pool)."""
  from fsig_jax.models.bundle import init_bundle  # pylint: disable=g-import-not-at-top
  from fsig_jax.models.progan import ProGANConfig  # pylint: disable=g-import-not-at-top
  cfg = ProGANConfig(16, (32, 32, 16), z_dim=32, d_hidden=32)
  hp = tiny_hparams(batch_size=2, mixing_prob=0.0, pl_weight=0.0)
  method = get_method('rick', rick=dict(warmup_iter=0, fisher_freq=1, num_fisher_img=1,
                                        chunk=2, fisher_quantile=60.0, prune_quantile=20.0))
  state = init_state(init_bundle(cfg, jax.random.PRNGKey(0)), hp, method, jax.random.PRNGKey(1),
                     images=tiny_images(4))
  step = make_train_step(cfg, hp, method, donate=False)
  for _ in range(2):
    state, metrics = step(state, jnp.asarray(tiny_images(2)))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  s = jax.device_get(state)
  ms = s['method']['rick']
  assert sorted(k for k in ms['history']['fractions'] if k.startswith('G.')) == [
      'G.b16.conv0.conv', 'G.b16.conv1.conv', 'G.b8.conv0.conv', 'G.b8.conv1.conv']
  mask = ms['prune']['D']['b16']['conv0']['kernel'].astype(bool)
  assert mask.any() and np.all(s['D']['net']['b16']['conv0']['kernel'][..., mask] == 0)


def test_late_start_adam_is_optax_adam_while_a_leaf_trains():
  import optax  # pylint: disable=g-import-not-at-top
  from fsig_jax.engine.state import late_start  # pylint: disable=g-import-not-at-top
  ours = optax.chain(late_start(optax.scale_by_adam(b1=0.0, b2=0.99, eps=1e-8)),
                     optax.scale_by_learning_rate(0.002))
  ref = optax.adam(0.002, b1=0.0, b2=0.99, eps=1e-8)
  params = {'a': jnp.ones((3, 2)), 'b': jnp.zeros((4,))}
  so, sr = ours.init(params), ref.init(params)
  for i in range(5):
    g = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(i), p.shape), params)
    uo, so = ours.update(g, so, params)
    ur, sr = ref.update(g, sr, params)
    for k in params:  # the same arithmetic, leaf by leaf (XLA may round one ulp apart)
      np.testing.assert_allclose(uo[k], ur[k], rtol=1e-6, err_msg=k)


def test_a_parameter_held_out_starts_its_adam_at_step_one():
  """RICK's warm-up: a parameter with no gradient for 250 steps then trains. Its
  first update must be torch Adam's first step (beta1 = 0: magnitude lr), not
  ~10x lr as with one shared step count (the bug this fixes)."""
  import optax  # pylint: disable=g-import-not-at-top
  from fsig_jax.engine.state import late_start  # pylint: disable=g-import-not-at-top
  lr = 0.002
  make = lambda late: (optax.chain(late_start(optax.scale_by_adam(b1=0.0, b2=0.99, eps=1e-8)),  # noqa: E731
                                   optax.scale_by_learning_rate(lr)) if late else
                       optax.adam(lr, b1=0.0, b2=0.99, eps=1e-8))
  params = {'held': jnp.ones((5,)), 'live': jnp.ones((5,))}
  g = {'held': jnp.full((5,), 0.3), 'live': jnp.full((5,), -0.1)}
  first = {}
  for late in (False, True):
    opt = make(late)
    state = opt.init(params)
    for _ in range(250):  # warm-up: 'held' gets no gradient (RICK masks it to zero)
      _, state = opt.update({'held': jnp.zeros(5), 'live': g['live']}, state, params)
    u, _ = opt.update(g, state, params)
    first[late] = np.asarray(u['held'])
  np.testing.assert_allclose(np.abs(first[True]), lr, rtol=1e-5)  # torch: lr * g / |g|
  assert np.abs(first[False]).min() > 9 * lr  # the shared count's overshoot


def test_rick_starts_g_adam_after_the_warm_up(run):
  """RICK's G convs get no gradient in warm-up (steps 0, 1), so their Adam step
  count is 0 until step 2, whose main and lazy path-length updates make it 2;
  a shared count would be 5 by then (3 warm-up updates included)."""
  import optax  # pylint: disable=g-import-not-at-top
  counts = [leaves_with_paths(jax.tree.map(
      lambda a: a.count, st['opt_G'][0],
      is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))) for st in run[:4]]
  convs = [k for k in counts[0] if 'synthesis' in k and 'conv' in k and 'kernel' in k
           and "['b4']" not in k]
  assert convs
  for k in convs:
    assert [int(c[k]) for c in counts] == [0, 0, 0, 2], k


def test_fisher_uses_num_fisher_img_latents_by_default():
  """The official `_noise/000j.pt` files hold one latent each, so an estimate
  sees num_fisher_img images, not num_fisher_img x batch."""
  hp = tiny_hparams(batch_size=2)
  for kw, want in (({}, 3), ({'fisher_batch': 0}, 6), ({'fisher_batch': 4}, 12)):
    method = get_method('rick', rick=dict(num_fisher_img=3, warmup_iter=5, **kw))
    state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(0), images=tiny_images(8))
    assert state['method']['rick']['zs'].shape[0] == want, kw


def test_no_path_length_regularisation_in_the_warm_up(run):
  """Official: `if g_regularize and i >= args.warmup_iter`. Step 0 (a lazy
  regularisation step, g_reg_every 2) is warm-up: pl_mean stays 0; step 2,
  the first after the warm-up, starts it."""
  pl = [float(s['pl_mean']) for s in run[:4]]
  assert pl[:3] == [0.0, 0.0, 0.0] and pl[3] > 0
