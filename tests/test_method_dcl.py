"""DCL: the two InfoNCE losses by hand, their minimum, latent pairs, and 3 engine steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from engine_utils import TINY, leaves_with_paths, tiny_hparams, tiny_images
from fsig_jax.methods.context import InitContext, StepContext
from fsig_jax.models.functional import Models
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods.base import MethodInit, compose
from fsig_jax.methods.dcl import (combine_levels, dcl, default_d_layers, default_g_layers,
                                  discriminator_infonce, generator_infonce, latent_pair)
from fsig_jax.models.bundle import init_bundle


def np_cos(a, b):
  a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
  return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


def test_generator_infonce_matches_a_loop():
  rng = np.random.default_rng(0)
  t, s = rng.normal(size=(2, 4, 3, 2, 5)).astype(np.float32)
  s[1] = 0.7 * t[1] + 0.3 * s[1]  # one clearly positive pair
  for tau in (0.07, 0.5):
    want = 0.0
    for i in range(4):
      num = np.exp(np_cos(t[i], s[i]) / tau)
      den = sum(np.exp(np_cos(t[i], s[j]) / tau) for j in range(4))  # j = i included (Eq. 2)
      want -= np.log(num / den) / 4
    np.testing.assert_allclose(generator_infonce(jnp.asarray(t), jnp.asarray(s), tau), want,
                               rtol=1e-5)


def test_discriminator_infonce_matches_a_loop():
  rng = np.random.default_rng(1)
  a, p = rng.normal(size=(2, 3, 2, 2, 4)).astype(np.float32)
  x = rng.normal(size=(5, 2, 2, 4)).astype(np.float32)
  p[0] = a[0] + 0.2 * p[0]
  for tau in (0.07, 0.5):
    want = 0.0
    for i in range(3):
      pos = np.exp(np_cos(a[i], p[i]) / tau)
      neg = sum(np.exp(np_cos(a[i], x[j]) / tau) for j in range(5))  # every real image
      want -= np.log(pos / (pos + neg)) / 3
    got = discriminator_infonce(jnp.asarray(a), jnp.asarray(p), jnp.asarray(x), tau)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_generator_loss_is_lowest_when_target_features_equal_source():
  rng = np.random.default_rng(2)
  s = jnp.asarray(rng.normal(size=(6, 4, 4, 8)).astype(np.float32))
  noise = jnp.asarray(rng.normal(size=s.shape).astype(np.float32))
  for tau in (0.07, 0.5):
    matched = float(generator_infonce(s, s, tau))
    for shift in range(1, 6):  # every cyclic shuffle: no anchor keeps its own positive
      assert matched < float(generator_infonce(jnp.roll(s, shift, axis=0), s, tau)) - 1.0
  for perm in ([1, 0, 2, 3, 4, 5], [0, 1, 2, 3, 5, 4]):  # a single swapped pair
    assert matched < float(generator_infonce(s[jnp.asarray(perm)], s, 0.5))
  assert matched < float(generator_infonce(s + 0.5 * noise, s, 0.5))
  # The loss depends only on directions: a rescaled copy is as good as the source.
  np.testing.assert_allclose(generator_infonce(3.0 * s, s, 0.5), matched, rtol=1e-5)


def test_combine_levels():
  losses = [jnp.asarray(1.0), jnp.asarray(2.0), jnp.asarray(6.0)]
  assert float(combine_levels(losses, 'mean', jax.random.PRNGKey(0))) == 3.0
  picks = {float(combine_levels(losses, 'random', jax.random.PRNGKey(k))) for k in range(40)}
  assert picks == {1.0, 2.0, 6.0}


# XLA's CPU backend optimisations dominate the build time of these tiny programs.
FAST = {'xla_backend_optimization_level': 0}


def fast_compile(jitted, *args):
  """`jitted` compiled for `args` with backend optimisations off (3x faster to build)."""
  return jitted.lower(*args).compile(compiler_options=FAST)


@pytest.fixture(scope='module')
def bundle():
  """engine_utils.tiny_bundle(), built under jit (eager Flax init is slow)."""
  init = jax.jit(lambda key: init_bundle(TINY, key))
  return fast_compile(init, jax.random.PRNGKey(0))(jax.random.PRNGKey(0))


def official_d_taps(cfg):
  """(spatial size, channels) of each map model.py `Discriminator.forward` puts in
  `feat` (l. 675-707), transcribed from its constructor: convs = [ConvLayer(3,
  channels[size], 1)] + [ResBlock(channels[2**i], channels[2**(i-1)]) for i in
  log2(size)..3]; ResBlock.conv1 keeps size and width, conv2 halves the size and
  has the out width; final_conv is 4x4 with channels[4]."""
  ch, size = cfg.d_width, cfg.resolution
  taps = [(size, ch(size))]
  for i in range(int(np.log2(size)), 2, -1):
    taps += [(2 ** i, ch(2 ** i)), (2 ** (i - 1), ch(2 ** (i - 1)))]
  return taps + [(4, ch(4))]


@pytest.mark.parametrize('res', [16, 256])
def test_d_taps_are_the_official_feat_list(res):
  from fsig_jax.models.config import StyleGAN2Config, rosinality_channels
  from fsig_jax.models.stylegan2 import Discriminator
  cfg = TINY if res == 16 else StyleGAN2Config(256, rosinality_channels(256, 2),
                                               rosinality_channels(256, 2))
  names = default_d_layers(res)
  want = official_d_taps(cfg)
  assert len(names) == len(want) == 1 + 2 * (int(np.log2(res)) - 2) + 1
  img = jax.ShapeDtypeStruct((2, res, res, 3), jnp.float32)
  D = Discriminator(cfg)
  dv = jax.eval_shape(lambda: D.init(jax.random.PRNGKey(0), img))
  _, feats = jax.eval_shape(lambda v, x: D.apply(v, x, return_features=True), dv, img)
  assert [feats[n].shape for n in names] == [(2, s, s, c) for s, c in want]
  assert names[0] == f'b{res}.fromrgb' and names[-1] == 'b4.conv'
  # Per resolution: fromRGB + conv1 at full size, conv2 + the next conv1 below, final conv at 4.
  per_size = {s: sum(1 for n in names if feats[n].shape[1] == s) for s, _ in want}
  assert per_size == {s: 2 for s, _ in want}


def test_layers_are_the_official_ones_and_checked(bundle):
  assert default_g_layers(16) == ('b4.conv1', 'b8.conv0', 'b8.conv1', 'b16.conv0', 'b16.conv1')
  assert default_d_layers(16) == ('b16.fromrgb', 'b16.conv0', 'b16.conv1', 'b8.conv0',
                                  'b8.conv1', 'b4.conv')
  assert default_d_layers(16, 'blocks') == ('b16', 'b8', 'b4.conv')
  ictx = InitContext(bundle, None, jax.random.PRNGKey(0), tiny_hparams(), Models(TINY))
  assert dcl().init(ictx) == MethodInit()  # no state, no trainable heads
  for bad in (dict(g_layers=['b8.img']), dict(d_layers=['b32']), dict(d_layers=[])):
    with pytest.raises(ValueError, match='layers must be a non-empty subset'):
      dcl(**bad).init(ictx)
  dcl(d_layers=['b16.fromrgb', 'b8', 'b4.fc']).init(ictx)  # both sets mix
  with pytest.raises(ValueError, match="d_layers must be one of .'official', 'blocks'"):
    dcl(d_layers='convs')
  with pytest.raises(ValueError, match='at least 2 latents'):
    dcl(batch=1).init(ictx)
  with pytest.raises(ValueError, match='layer_mode'):
    dcl(layer_mode='sum')


@pytest.fixture(scope='module')
def direct(bundle):
  """latent_pair and the two terms, called outside the engine on G = G_s with noise on.

  Every noise strength is set to 1 so that sharing the noise matters. One jit
  for everything keeps the compile cost to one.
  """
  g = bundle.nets['G']
  noisy = jax.tree_util.tree_map_with_path(
      lambda p, x: jnp.ones_like(x) if 'noise_strength' in jax.tree_util.keystr(p) else x,
      g['params'])
  hp = tiny_hparams()
  method, unshared = dcl(layer_mode='mean'), dcl(layer_mode='mean', share_noise=False)
  blocks = dcl(layer_mode='mean', d_layers='blocks')
  real = jnp.asarray(tiny_images(hp.batch_size))


  def ctx_of(g_net, d_net, source, real, d_feats_real=None):
    return StepContext(phase='G', step=jnp.zeros((), jnp.int32), key=jax.random.PRNGKey(7), hp=hp,
                       models=Models(TINY), g={'net': g_net}, d={'net': d_net},
                       g_buffers=g['buffers'], source_g=source, real=real,
                       d_feats_real=d_feats_real)

  @jax.jit
  def run(g_net, d_net, source, real, moved):
    ctx = ctx_of(g_net, d_net, source, real)
    key = jax.random.PRNGKey(3)
    # An adapted G whose weights (mapping included) moved: the source side must not change.
    moved_pair = latent_pair(ctx_of(moved, d_net, source, real), key, 3)

    def g_term(gn):
      terms = method.g_terms(ctx_of(gn, d_net, source, real), {})
      return terms['dcl_g'], terms

    d_term = lambda dn: method.d_terms(ctx_of(g_net, dn, source, real), {})['dcl_d']  # noqa: E731
    (_, terms), g_grad = jax.value_and_grad(g_term, has_aux=True)(g_net)
    d_value, d_grad = jax.value_and_grad(d_term)(d_net)
    # The engine's (un-augmented) real features are reused when given.
    engine_feats = ctx.models.disc(d_net, real)[1]
    d_reused = method.d_terms(ctx_of(g_net, d_net, source, real, engine_feats), {})['dcl_d']
    # The d term by hand: the same latents (d_terms' first key), the mean over the taps.
    img_t, img_s = latent_pair(ctx, jax.random.split(ctx.key)[0], hp.batch_size)
    by_hand = {}
    for which in ('official', 'blocks'):
      f_t, f_s, f_r = (ctx.models.disc(d_net, x)[1] for x in (img_t, img_s, real))
      by_hand[which] = 0.5 * jnp.mean(jnp.stack([
          discriminator_infonce(f_t[l], f_s[l], f_r[l], 0.07)
          for l in default_d_layers(16, which)]))
    return {'shared': latent_pair(ctx, key, 3, share_noise=True, with_features=True),
            'd_by_hand': by_hand,
            'd_blocks': blocks.d_terms(ctx_of(g_net, d_net, source, real), {})['dcl_d'],
            'g_terms': terms, 'g_grad': g_grad, 'd_value': d_value, 'd_grad': d_grad,
            'd_reused': d_reused, 'g_term_unshared': unshared.g_terms(ctx, {})['dcl_g'],
            'moved': moved_pair}

  moved = jax.tree.map(lambda x: x * 1.5, noisy)
  args = (noisy, bundle.nets['D']['params'], noisy, real, moved)
  out = fast_compile(run, *args)(*args)
  off, ctx = dcl(lambda_g=0, lambda_d=0), ctx_of(noisy, None, noisy, real)
  out['dropped'] = {**off.g_terms(ctx, {}), **off.d_terms(ctx, {})}
  return out


def test_latent_pair_shares_latents_and_noise(direct):
  (img_t, f_t), (img_s, f_s) = direct['shared']
  # Same z, noise and weights (to float rounding: XLA may fuse the two passes differently).
  np.testing.assert_allclose(img_t, img_s, rtol=1e-5, atol=1e-5)
  for name in default_g_layers(16):
    np.testing.assert_allclose(f_t[name], f_s[name], rtol=1e-5, atol=1e-5)
  assert float(jnp.std(img_t[0] - img_t[1])) > 1e-3  # a different latent per row
  moved_t, moved_s = direct['moved']
  np.testing.assert_allclose(moved_s, img_s, rtol=1e-5, atol=1e-5)  # G_s's own mapping
  assert float(jnp.max(jnp.abs(moved_t - img_t))) > 1e-2


def test_terms_reach_their_own_side(direct):
  assert set(direct['g_terms']) == {'dcl_g'} and direct['dropped'] == {}
  # With independent noise the positives differ and the loss rises (noise strengths are 1).
  assert 0 < float(direct['g_terms']['dcl_g']) < float(direct['g_term_unshared'])
  assert float(direct['d_value']) > 0
  np.testing.assert_allclose(direct['d_reused'], direct['d_value'], rtol=1e-5)
  for side in ('g_grad', 'd_grad'):
    grads = jax.tree.leaves(direct[side])
    assert all(np.isfinite(x).all() for x in grads)
    assert sum(float(jnp.sum(jnp.abs(x))) > 0 for x in grads) > len(grads) // 2, side


def test_d_term_contrasts_the_chosen_taps(direct):
  np.testing.assert_allclose(direct['d_value'], direct['d_by_hand']['official'], rtol=1e-5)
  np.testing.assert_allclose(direct['d_blocks'], direct['d_by_hand']['blocks'], rtol=1e-5)
  assert abs(float(direct['d_value']) - float(direct['d_blocks'])) > 1e-4  # the taps matter


def test_paper_row_is_dcl_on_cdcs_patch_discriminator():
  from configs import common, paper_ffhq256
  from fsig_jax.methods.cdc import cdc
  c = paper_ffhq256.get_config('dcl,babies')
  assert c.method.names == 'dcl,cdc' and c.method.kwargs.cdc.kl_wt == 0
  assert common.base('dcl').method.names == 'dcl'  # plain DCL elsewhere
  assert paper_ffhq256.get_config('dcl+tgan,babies').method.names == 'dcl,tgan'
  both = compose(dcl(), cdc(kl_wt=0.0))
  assert [m.name for m in both.methods] == ['dcl', 'cdc']
  assert cdc(kl_wt=0.0).g_terms(None, {}) == {}  # no distance consistency


def test_three_engine_steps(bundle):
  # Without the lazy regularisers (their double backward only slows compiling).
  hp = tiny_hparams(r1_gamma=0.0, pl_weight=0.0)
  method = compose(dcl())
  state = init_state(bundle, hp, method, jax.random.PRNGKey(1))
  assert set(state['G']) == {'net'} and set(state['D']) == {'net'}  # no heads to train
  init = leaves_with_paths(state)
  images = jnp.asarray(tiny_images(hp.batch_size))
  step = fast_compile(make_train_step(TINY, hp, method), state, images)
  metrics = []
  for _ in range(3):
    state, m = step(state, images)
    metrics.append({k: float(v) for k, v in m.items()})
  final = leaves_with_paths(state)
  assert all({'dcl_g', 'dcl_d', 'g_adv', 'd_adv'} <= set(m) for m in metrics)
  assert all(np.isfinite(v) for m in metrics for v in m.values())
  assert all(m['dcl_g'] > 0 and m['dcl_d'] > 0 for m in metrics)
  for side in ("['G']['net']", "['D']['net']"):
    keys = [k for k in init if k.startswith(side)]
    assert sum(not np.array_equal(init[k], final[k]) for k in keys) > 0.9 * len(keys)
  src = [k for k in init if k.startswith("['source_G']")]
  assert all(np.array_equal(init[k], final[k]) for k in src)


@pytest.mark.slow
def test_paper_row_engine_steps(bundle):
  """dcl + cdc(kl_wt=0): an anchor step (image D) and a patch step (patch D), with
  both contrastive terms and no distance consistency."""
  from fsig_jax.methods.cdc import cdc
  hp = tiny_hparams(r1_gamma=0.0, pl_weight=0.0)
  method = compose(dcl(), cdc(kl_wt=0.0))
  state = init_state(bundle, hp, method, jax.random.PRNGKey(1), images=tiny_images(10))
  images = jnp.asarray(tiny_images(hp.batch_size))
  step = fast_compile(make_train_step(TINY, hp, method), state, images)
  for _ in range(2):
    state, m = step(state, images)
    m = {k: float(v) for k, v in m.items()}
    assert {'dcl_g', 'dcl_d', 'g_adv', 'd_adv'} <= set(m) and 'g_cdc_dist' not in m
    assert all(np.isfinite(v) for v in m.values()) and m['dcl_d'] > 0
