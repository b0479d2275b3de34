"""KD-FSIG: reduction to CDC, momentum keys and queue, SDD gradients, resume, configs."""
import os
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fsig_jax
from conftest import ROOT
from engine_utils import TINY, leaves_with_paths, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax.engine import step as step_lib
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.losses.relation import relation_kl, ssim_a
from fsig_jax.methods import get_method
from fsig_jax.methods.cdc import PATCH_KEY, generator_feature_keys
from fsig_jax.methods.context import StepContext
from fsig_jax.methods.kd_fsig import QUEUE_AUX, SOURCE_STREAM
from fsig_jax.models.functional import Models

sys.path.insert(0, str(ROOT))
from configs import kd_fsig as kd_configs  # noqa: E402  pylint: disable=g-import-not-at-top

B = 2  # relation batch (feat_const_batch) in these tests
RUN = dict(seed=0, batch_size=2, log_every=1, checkpoint_every=2, sample_every=0,
           d_reg_every=2, g_reg_every=2)
SOURCE = np.asarray(jax.random.uniform(jax.random.PRNGKey(11), (6, 16, 16, 3), minval=-1,
                                       maxval=1))
FULL = dict(feat_const_batch=B, queue_size=2 * B, n_train=4, source_images=SOURCE)


def _kd(**kw):
  return get_method('kd_fsig', kd_fsig={**FULL, **kw})


def test_in_batch_cosine_kd_fsig_is_exactly_cdc():
  """With cosine similarity, in-batch keys and no SDD, KD-FSIG computes CDC's loss
  with CDC's draws: the trained networks are bit-identical (so "+SSIM-A" differs
  from CDC only in the similarity)."""
  common = dict(feat_const_batch=B, n_train=4)
  _, s_cdc = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='cdc', steps=3,
                            method_kwargs={'cdc': dict(kl_wt=1000.0, **common)}, **RUN)
  _, s_kd = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='kd_fsig', steps=3,
                           method_kwargs={'kd_fsig': dict(alpha=1000.0, similarity='cosine',
                                                          momentum=False, queue_size=0,
                                                          sdd_weight=0.0, **common)}, **RUN)
  for part in ('G', 'D', 'G_ema', 'opt_G', 'opt_D'):
    a, b = leaves_with_paths(jax.device_get(s_cdc[part])), leaves_with_paths(
        jax.device_get(s_kd[part]))
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=f'{part}{k}')
  np.testing.assert_array_equal(s_cdc['method']['cdc']['anchors'],
                                s_kd['method']['kd_fsig']['anchors'])


@pytest.fixture(scope='module')
def two_steps():
  """The full method's state before and after each of two steps, and its step."""
  hp = tiny_hparams(batch_size=2)
  method = _kd()
  state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(1), images=tiny_images(8))
  fn = make_train_step(TINY, hp, method, donate=False)
  states = [state]
  for i in range(2):
    extra = {SOURCE_STREAM: jnp.asarray(SOURCE[2 * i:2 * i + 2])}
    states.append(fn(states[-1], tiny_images(8)[:2], extra)[0])
  return hp, method, jax.device_get(states)


def _gm_features(state):
  """What step `state` pushes: G_M (= state's G_ema, the EMA after the previous
  step) features of the step's relation latents, recomputed by hand."""
  keys = dict(zip(step_lib.KEYS, jax.random.split(state['key'], len(step_lib.KEYS))))
  kz, _, _, _ = jax.random.split(jax.random.fold_in(keys['g_method'], 1), 4)
  kmom = jax.random.fold_in(keys['g_method'], 2)
  models = Models(TINY)
  z = jax.random.normal(kz, (B, TINY.z_dim))
  ws = models.broadcast(models.map(state['G_ema'], state['G_buffers'], z))
  return models.synth(state['G_ema'], state['G_buffers'], ws, kmom, return_features=True)[1]


def test_queue_is_fifo_of_the_momentum_features_and_prefilled(two_steps):
  _, _, states = two_steps
  drawn = generator_feature_keys(TINY)[1:]
  q = [s['method']['kd_fsig']['queue'] for s in states]
  assert set(q[0]) == {'m', 's'} and sorted(q[0]['m']) == sorted(drawn)
  for k in drawn:
    assert q[0]['m'][k].shape[0] == 2 * B
    # Pre-filled: at step 0 G_M is the bundle's G_ema, the source model here.
    assert np.abs(q[0]['m'][k]).max() > 0
    for t in (1, 2):
      np.testing.assert_array_equal(q[t]['m'][k][:B], q[t - 1]['m'][k][B:])   # oldest out
      np.testing.assert_allclose(q[t]['m'][k][B:], _gm_features(states[t - 1])[k],
                                 rtol=1e-5, atol=1e-5)                       # newest in
      np.testing.assert_array_equal(q[t]['s'][k][:B], q[t - 1]['s'][k][B:])


def _ctx(state, hp, method, phase='G'):
  models = Models(TINY)
  return StepContext(phase=phase, step=jnp.asarray(1), key=jax.random.PRNGKey(5), hp=hp,
                     models=models, g=state['G'], d=state['D'], g_buffers=state['G_buffers'],
                     source_g=state['source_G'], g_ema=state['G_ema'],
                     real=jnp.asarray(tiny_images(8)[:2]),
                     extra={SOURCE_STREAM: jnp.asarray(SOURCE[:2])})


def _max_abs(tree):
  return max(float(jnp.abs(x).max()) for x in jax.tree.leaves(tree))


def test_relation_gradient_reaches_only_the_adapted_generator(two_steps):
  hp, method, states = two_steps
  state, ms = states[1], states[1]['method']

  def loss(g_net, source_g, g_ema):
    ctx = _ctx(state, hp, method)
    ctx.g, ctx.source_g, ctx.g_ema = {**state['G'], 'net': g_net}, source_g, g_ema
    return method.g_terms(ctx, ms)['g_kd_dist']

  assert float(loss(state['G']['net'], state['source_G'], state['G_ema'])) > 0
  g_t, g_s, g_m = jax.grad(loss, argnums=(0, 1, 2))(state['G']['net'], state['source_G'],
                                                    state['G_ema'])
  assert _max_abs(g_t) > 0
  assert _max_abs(g_s) == 0 and _max_abs(g_m) == 0
  ctx = _ctx(state, hp, method)
  method.g_terms(ctx, ms)
  assert set(ctx.aux) == {QUEUE_AUX}  # this step's features, for update() to push


def test_sdd_trains_only_the_patch_discriminator(two_steps):
  """Eq. 9 reaches D's trunk up to the patch tap (b16.conv0 here) and the patch
  head, never G_T and never the D layers above the tap or the image head."""
  hp, method, states = two_steps
  state, ms = states[1], states[1]['method']

  def loss(d_side, g_net):
    ctx = _ctx(state, hp, method, phase='D')
    ctx.d, ctx.g = d_side, {**state['G'], 'net': g_net}
    return method.d_terms(ctx, ms)['d_kd_sdd']

  assert float(loss(state['D'], state['G']['net'])) > 0
  g_d, g_g = jax.grad(loss, argnums=(0, 1))(state['D'], state['G']['net'])
  assert _max_abs(g_g) == 0
  net = g_d['net']
  assert _max_abs(g_d[PATCH_KEY]) > 0
  assert _max_abs(net['b16']['fromrgb']) > 0 and _max_abs(net['b16']['conv0']) > 0
  above = {k: v for k, v in net.items() if k != 'b16'}
  above.update({f'b16.{k}': v for k, v in net['b16'].items() if k not in ('fromrgb', 'conv0')})
  assert above and _max_abs(above) == 0, sorted(above)
  # Other phases and sdd_weight = 0: no term.
  assert method.d_terms(_ctx(state, hp, method, phase='R1'), ms) == {}


def test_full_objective_against_a_hand_computation(two_steps):
  """g_kd_dist recomputed from the three generators' features with the pairwise
  SSIM-A (itself checked against the image SSIM metric) and numpy softmax / KL."""
  hp, method, states = two_steps
  state, ms = dict(states[1]), states[1]['method']
  # G_T moved well away from G_S, so the KL is far above float32 noise.
  leaves, tree = jax.tree.flatten(state['G']['net'])
  noise = [0.3 * jax.random.normal(jax.random.PRNGKey(i), x.shape) for i, x in enumerate(leaves)]
  state['G'] = {**state['G'], 'net': jax.tree.unflatten(
      tree, [x + n for x, n in zip(leaves, noise)])}
  ctx = _ctx(state, hp, method)
  got = float(method.g_terms(ctx, ms)['g_kd_dist'])

  keys = generator_feature_keys(TINY)
  kz, kind, ksrc, ktgt = jax.random.split(jax.random.fold_in(ctx.key, 1), 4)
  kmom = jax.random.fold_in(ctx.key, 2)
  z = jax.random.normal(kz, (B, TINY.z_dim))
  layer = np.asarray(jax.random.randint(kind, (B,), 1, len(keys)))
  models = Models(TINY)

  def feats(p, k):
    ws = models.broadcast(models.map(p, state['G_buffers'], z))
    return models.synth(p, state['G_buffers'], ws, k, return_features=True)[1]

  t, s, m = feats(state['G']['net'], ktgt), feats(state['source_G'], ksrc), feats(
      state['G_ema'], kmom)
  queue = ms['kd_fsig']['queue']
  pair = lambda a, b: float(ssim_a(a[None], b[None])[0])  # noqa: E731
  p_rows, q_rows = [], []
  for i in range(B):
    k = keys[layer[i]]
    others = [j for j in range(B) if j != i]
    tgt = ([pair(t[k][i], t[k][j]) for j in others] + [pair(t[k][i], m[k][j]) for j in range(B)]
           + [pair(t[k][i], x) for x in queue['m'][k]])
    src = ([pair(s[k][i], s[k][j]) for j in others] + [pair(s[k][i], s[k][j]) for j in range(B)]
           + [pair(s[k][i], x) for x in queue['s'][k]])
    q_rows.append(tgt)
    p_rows.append(src)
  p, q = np.asarray(p_rows, np.float64), np.asarray(q_rows, np.float64)
  p = np.exp(p) / np.exp(p).sum(1, keepdims=True)
  q = np.exp(q) / np.exp(q).sum(1, keepdims=True)
  want = 1e4 * np.mean(p * (np.log(p) - np.log(q)))
  assert want > 1.0
  np.testing.assert_allclose(got, want, rtol=1e-4)
  # The KL itself as relation_kl writes it, on the same rows.
  np.testing.assert_allclose(float(relation_kl(jnp.log(p), jnp.log(q), 1e4)), want, rtol=1e-5)


def test_resume_with_the_queue_is_bit_identical(tmp_path):
  kw = {'kd_fsig': FULL}
  wd = str(tmp_path / 'wd')
  _, full = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='kd_fsig', steps=4,
                           workdir=wd, method_kwargs=kw, **RUN)
  shutil.rmtree(os.path.join(wd, 'checkpoints', '4'))  # as if killed after step 3
  _, again = fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='kd_fsig', steps=4,
                            workdir=wd, method_kwargs=kw, **RUN)
  a, b = leaves_with_paths(jax.device_get(full)), leaves_with_paths(jax.device_get(again))
  assert a.keys() == b.keys() and any('queue' in k for k in a)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize('kwargs,match', [
    (dict(queue_size=3), r'multiple of feat_const_batch'),
    (dict(momentum=False, queue_size=4, sdd_weight=0), r'need momentum=True'),
    (dict(moco=True, queue_size=0, sdd_weight=0), r'no momentum keys'),
    (dict(similarity='l2', sdd_weight=0), r"similarity must be one of \('ssim_a', 'cosine'\)"),
])
def test_bad_settings_are_one_clear_error(kwargs, match):
  with pytest.raises(ValueError, match=match):
    get_method('kd_fsig', kd_fsig=kwargs)


def test_sdd_without_source_images_names_the_setting():
  with pytest.raises(fsig_jax.ConfigError, match=r'source_images=FOLDER .*sdd_weight=0'):
    fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='kd_fsig', steps=1,
                   method_kwargs={'kd_fsig': {**FULL, 'source_images': ''}}, **RUN)


def test_a_missing_source_folder_names_the_setting():
  with pytest.raises(fsig_jax.ConfigError, match=r'method.kwargs.kd_fsig.source_images = '):
    fsig_jax.adapt(tiny_bundle(), tiny_images(8), method='kd_fsig', steps=1,
                   method_kwargs={'kd_fsig': {**FULL, 'source_images': '/no/such/ffhq'}}, **RUN)


def test_configs_give_every_row_of_table_3_and_the_queue_sweep():
  rows = {r: kd_configs.get_config(f'offline,{r},anime_sketch') for r in kd_configs.ROWS}
  assert rows['cdc'].method.names == 'cdc'
  kw = {r: c.method.kwargs.to_dict().get('kd_fsig') for r, c in rows.items()}
  assert kw['ssim_a'] == dict(momentum=False, queue_size=0, sdd_weight=0.0)
  assert kw['momentum']['queue_size'] == 16 and kw['momentum']['sdd_weight'] == 0.0
  assert kw['full']['source_images'].endswith(os.path.join('anime_faces_64', 'train'))
  assert [kw[f'queue{n}']['queue_size'] for n in (4, 8, 12, 16)] == [4, 8, 12, 16]
  # The MoCo reading of Eq. 7: the same rows with moco=True, nothing else changed.
  for r in ('momentum', 'full'):
    assert kw[f'{r}_moco'] == dict(kw[r], moco=True) and 'moco' not in kw[r]
  for r, c in rows.items():
    assert c.hparams.batch_size == 4
    get_method(c.method.names.split(','), **c.method.kwargs.to_dict())
  paper = kd_configs.get_config('paper,full,sunglasses')
  assert paper.model.resolution == 256 and paper.data.source == 'data/sunglasses'
  assert paper.method.kwargs.kd_fsig.source_images == 'data/ffhq'
  with pytest.raises(fsig_jax.ConfigError, match='unknown KD-FSIG row'):
    kd_configs.get_config('offline,queue5,anime_sketch')


def test_in_batch_ssim_a_row_equals_cdc_rows_with_ssim_a(two_steps):
  """The "+SSIM-A" row (in-batch keys) computes only each row's drawn layer; it
  equals CDC's all-layers-then-select rows with SSIM-A as the similarity."""
  from fsig_jax.losses.relation import in_batch_sims, ssim_a_matrix  # pylint: disable=g-import-not-at-top
  hp, _, states = two_steps
  method = get_method('kd_fsig', kd_fsig=dict(feat_const_batch=B, n_train=4, momentum=False,
                                              queue_size=0, sdd_weight=0.0))
  state = states[1]
  ctx = _ctx(state, hp, method)
  got = float(method.g_terms(ctx, {'kd_fsig': {}})['g_kd_dist'])
  keys = generator_feature_keys(TINY)
  kz, kind, ksrc, ktgt = jax.random.split(jax.random.fold_in(ctx.key, 1), 4)
  z = jax.random.normal(kz, (B, TINY.z_dim))
  layer = jax.random.randint(kind, (B,), 1, len(keys))
  models = Models(TINY)

  def feats(p, k):
    ws = models.broadcast(models.map(p, state['G_buffers'], z))
    f = models.synth(p, state['G_buffers'], ws, k, return_features=True)[1]
    return [f[name] for name in keys]

  self_sim = lambda f: ssim_a_matrix(f, f)  # noqa: E731
  want = float(relation_kl(in_batch_sims(feats(state['source_G'], ksrc), layer, self_sim),
                           in_batch_sims(feats(state['G']['net'], ktgt), layer, self_sim), 1e4))
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
