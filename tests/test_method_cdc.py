"""CDC: the distance-consistency KL against the official loop, anchors, the patch D, steps."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from engine_utils import TINY, leaves_with_paths, tiny_hparams, tiny_images
from fsig_jax.losses.regularizers import r1_penalty
from fsig_jax.methods.context import StepContext
from fsig_jax.models.functional import Models
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods.base import compose
from fsig_jax.methods.cdc import (
    PATCH_KEY, cdc, distance_consistency_loss, generator_feature_keys, init_patch_head,
    patch_layers, patch_logits)
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.config import StyleGAN2Config, rosinality_channels
from fsig_jax.models.stylegan2 import DiscriminatorBlock
from fsig_jax.nn.equalized import EqualConv2d


@pytest.fixture(scope='module')
def bundle():
  return jax.jit(functools.partial(init_bundle, TINY))(jax.random.PRNGKey(0))


# ---------------------------------------------------------------- distance consistency

def official_rel_loss(feat_source, feat_target, feat_ind, kl_wt):
  """train.py's loops, in float64: CosineSimilarity, Softmax(dim=1), KLDivLoss() ('mean')."""
  b = feat_source[0].shape[0]

  def sim(a, c):
    return a @ c / max(np.linalg.norm(a) * np.linalg.norm(c), 1e-8)

  def dist(feat):
    d = np.zeros([b, b - 1])
    for pair1 in range(b):
      tmpc = 0
      for pair2 in range(b):
        if pair1 != pair2:
          anchor_feat = feat[feat_ind[pair1]][pair1].reshape(-1)
          compare_feat = feat[feat_ind[pair1]][pair2].reshape(-1)
          d[pair1, tmpc] = sim(anchor_feat, compare_feat)
          tmpc += 1
    e = np.exp(d)
    return e / e.sum(axis=1, keepdims=True)

  p, q = dist(feat_source), dist(feat_target)
  return kl_wt * np.mean(p * (np.log(p) - np.log(q)))  # KLDivLoss(log q, p), reduction 'mean'


def test_distance_consistency_matches_official_loop():
  rng = np.random.default_rng(0)
  shapes = [(4, 2, 2, 3), (4, 4, 4, 2), (4, 1, 1, 5)]
  src = [rng.normal(size=s) for s in shapes]
  tgt = [x + rng.normal(size=x.shape) for x in src]
  feat_ind = np.array([1, 2, 1, 0])
  got = distance_consistency_loss([jnp.asarray(x, jnp.float32) for x in src],
                                  [jnp.asarray(x, jnp.float32) for x in tgt],
                                  jnp.asarray(feat_ind), kl_wt=1000.0)
  want = official_rel_loss(src, tgt, feat_ind, 1000.0)
  assert want > 1.0  # not a trivially small number
  np.testing.assert_allclose(float(got), want, rtol=1e-4)
  # Each row reads its own layer: another feat_ind gives another value.
  other = official_rel_loss(src, tgt, np.array([0, 0, 0, 0]), 1000.0)
  assert abs(other - want) > 1e-3 * want
  # Identical source and target: zero; the source side gets no gradient.
  same = [jnp.asarray(x, jnp.float32) for x in src]
  assert abs(float(distance_consistency_loss(same, same, jnp.asarray(feat_ind)))) < 1e-4
  gs, gt = jax.grad(lambda s, t: distance_consistency_loss(s, t, jnp.asarray(feat_ind)),
                    argnums=(0, 1))(same, [jnp.asarray(x, jnp.float32) for x in tgt])
  assert all(float(jnp.abs(g).max()) == 0.0 for g in gs)
  assert any(float(jnp.abs(g).max()) > 0.0 for g in gt)


# ---------------------------------------------------------------- layer maps

def test_feature_and_patch_layer_maps():
  cfg = StyleGAN2Config(256, rosinality_channels(256), rosinality_channels(256))
  keys = generator_feature_keys(cfg)
  assert keys[:4] == ['b4.conv1', 'b8.conv0', 'b8.conv1', 'b16.conv0']
  assert keys[-1] == 'b256.conv1' and len(keys) == cfg.num_ws - 1  # len(feat_list) = n_latent - 1
  # model.py Patch_Discriminator: 512-channel maps at 32 and 16 px, in forward order.
  assert patch_layers(cfg) == [('b64.conv1', 32, 512), ('b32.conv0', 32, 512),
                               ('b32.conv1', 16, 512), ('b16.conv0', 16, 512)]
  assert patch_layers(TINY) == [('b16.conv0', 16, 32)]


CFG32 = StyleGAN2Config(32, (8,) * 4, (8,) * 4, z_dim=8, w_dim=8, n_mlp=1)


def test_patch_logits_follow_rosinality_forward():
  """Each head judges rosinality's conv1/conv2 output (before the resnet's 1/sqrt 2).

  At 32 px the maps are b32.conv0 (32x32), b32.conv1 (16x16, a down-conv, whose
  gain matters) and b16.conv0 (16x16); the 256 px list is checked above.
  """
  models = Models(CFG32)
  img = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 3))
  assert [k for k, _, _ in patch_layers(CFG32)] == ['b32.conv0', 'b32.conv1', 'b16.conv0']

  @jax.jit  # one compile instead of op-by-op dispatch
  def both(img):
    dp = models.D.init(jax.random.PRNGKey(2), img)['params']
    d_side = {'net': dp, PATCH_KEY: init_patch_head(jax.random.PRNGKey(3), CFG32)}

    # The official forward by hand: conv0 (rosinality conv1), conv1 without the
    # sqrt(0.5) gain (rosinality conv2), the whole block before the next one.
    def conv(p, x, down=1):
      return EqualConv2d(8, 3, down=down, act='lrelu').apply({'params': p}, x)

    x32 = EqualConv2d(8, 1, act='lrelu').apply({'params': dp['b32']['fromrgb']}, img)
    t = conv(dp['b32']['conv0'], x32)
    x16 = DiscriminatorBlock(CFG32, 32, True).apply({'params': dp['b32']}, img)
    feats = [t, conv(dp['b32']['conv1'], t, down=2), conv(dp['b16']['conv0'], x16)]
    heads = [EqualConv2d(1, 3, act='lrelu').apply(
        {'params': d_side[PATCH_KEY][f'new_conv{p}']}, f)[..., 0] for p, f in enumerate(feats)]
    got = [patch_logits(models, d_side, img, jnp.asarray(p), highp=3)[2] for p in range(3)]
    return heads, got

  heads, got = both(img)
  for head, patches in zip(heads, got):
    assert patches.shape == (2, 32 * 32)
    patches = np.asarray(patches).reshape(2, 32, 32)
    r = 32 // head.shape[1]  # the 16 px maps are repeated 2x2
    np.testing.assert_allclose(patches[:, ::r, ::r], head, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(patches.mean(), float(head.mean()), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- hooks

def test_disc_hook_image_patch_and_r1(bundle):
  method = cdc()
  models = Models(TINY)
  d_side = {'net': bundle.nets['D']['params'],
            PATCH_KEY: init_patch_head(jax.random.PRNGKey(4), TINY)}
  img = jnp.asarray(tiny_images(4))

  @jax.jit
  def outputs(d_side, img):
    def call(step):
      ctx = StepContext(phase='D', step=jnp.asarray(step), key=jax.random.PRNGKey(7), hp=None,
                        models=models, g={}, d=d_side, g_buffers={}, source_g={}, real=img,
                        fake=img)
      return method.disc(ctx, d_side, img, {})

    image_logits = models.disc(d_side['net'], img, return_features=False)
    patches = patch_logits(models, d_side, img, jnp.asarray(0), 1)[2]
    return image_logits, patches, call(5), call(8)

  image_logits, patches, patch_step, anchor_step = outputs(d_side, img)
  out, feats = patch_step  # per-patch logits of the 16x16 map
  assert out.shape == (4, 16 * 16) and set(feats) >= {'b16', 'logits'}
  np.testing.assert_allclose(out, patches, rtol=1e-6)
  # Anchor step: the image-level D, repeated over the patches.
  np.testing.assert_allclose(anchor_step[0], jnp.broadcast_to(image_logits, (4, 256)), rtol=1e-6)
  # R1 (engine r1_penalty) reduces per sample first, as train.py's
  # real_pred.view(N, -1).mean(1): patch means, or exactly the image logits.
  per_sample = lambda x: np.asarray(x).reshape(4, -1).mean(1, keepdims=True)  # noqa: E731
  np.testing.assert_allclose(per_sample(out), patches.mean(axis=1, keepdims=True), rtol=1e-5)
  np.testing.assert_allclose(per_sample(anchor_step[0]), image_logits, rtol=1e-6)
  x = jnp.asarray(tiny_images(4))
  fn = lambda x: method.disc(StepContext(  # noqa: E731
      phase='R1', step=jnp.asarray(5), key=jax.random.PRNGKey(7), hp=None, models=models,
      g={}, d=d_side, g_buffers={}, source_g={}, real=x), d_side, x, {})[0]
  want = jax.grad(lambda x: jnp.sum(jnp.mean(fn(x), axis=1)))(x)
  want = float(jnp.mean(jnp.sum(jnp.square(want).reshape(4, -1), axis=1)))
  np.testing.assert_allclose(r1_penalty(fn, x), want, rtol=1e-5)


def test_anchor_sampling():
  method = cdc(subspace_std=0.1)
  anchors = jax.random.normal(jax.random.PRNGKey(0), (10, 32))
  state = {'anchors': anchors}
  sample = jax.jit(method.sample_z, static_argnums=3)  # the step is traced
  key = jax.random.PRNGKey(1)
  for step in (0, 4, 8):
    z1, z2 = sample(key, jnp.int32(step), state, 512)
    np.testing.assert_array_equal(z1, z2)  # one latent per sample: mixing is a no-op
    d = np.asarray(z1)[:, None] - np.asarray(anchors)[None]
    nearest = np.argmin((d ** 2).sum(-1), axis=1)
    res = d[np.arange(512), nearest]
    assert 0.09 < res.std() < 0.11 and abs(res.mean()) < 0.01  # anchor + 0.1 N(0, 1)
    assert len(set(nearest.tolist())) == 10  # each sample picks its own anchor
  for step in (1, 2, 3, 5):
    z1, z2 = sample(key, jnp.int32(step), state, 512)
    assert not np.allclose(z1, z2)
    d = np.asarray(z1)[:, None] - np.asarray(anchors)[None]
    assert np.sqrt((d ** 2).sum(-1).min(axis=1) / 32).min() > 0.5  # not near any anchor
    assert 0.9 < float(jnp.std(z1)) < 1.1


# ---------------------------------------------------------------- engine

def test_three_engine_steps(bundle):
  # Path length and R1 off (compile time; the hook's R1 form is checked above).
  hp = tiny_hparams(pl_weight=0.0, r1_gamma=0.0)
  method = compose(cdc())
  images = tiny_images(6)
  state = init_state(bundle, hp, method, jax.random.PRNGKey(1), images=images)
  step = make_train_step(TINY, hp, method)
  snaps, metrics = [leaves_with_paths(state)], []
  batch = jnp.asarray(images[:hp.batch_size])
  for _ in range(3):
    state, m = step(state, batch)
    snaps.append(leaves_with_paths(state))
    metrics.append({k: float(v) for k, v in m.items()})
  assert all('g_cdc_dist' in m for m in metrics)
  assert all(np.isfinite(v) for m in metrics for v in m.values())

  anchors = "['method']['cdc']['anchors']"
  assert snaps[0][anchors].shape == (6, TINY.z_dim) and snaps[0][anchors].dtype == np.float32
  assert all(np.array_equal(s[anchors], snaps[0][anchors]) for s in snaps)

  def changed(i, prefix):
    keys = [k for k in snaps[i] if k.startswith(prefix)]
    assert keys, prefix
    return any(not np.array_equal(snaps[i][k], snaps[i + 1][k]) for k in keys)

  head = f"['D']['{PATCH_KEY}']"
  # Step 0 (anchor): image-level D trains, the patch head gets no gradient.
  assert not changed(0, head)
  assert changed(0, "['D']['net']['b4']['fc']")
  # Steps 1, 2 (patch): the head and the layers below the tapped b16.conv0 train;
  # the rest of D is unused (train.py returns from the patch branch).
  for i in (1, 2):
    assert changed(i, head)
    assert changed(i, "['D']['net']['b16']['conv0']")
    for unused in ("['D']['net']['b4']", "['D']['net']['b8']", "['D']['net']['b16']['conv1']",
                   "['D']['net']['b16']['skip']"):
      assert not changed(i, unused), (i, unused)
