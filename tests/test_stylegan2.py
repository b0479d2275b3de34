"""StyleGAN2 module behaviour: shapes, style mixing, truncation, noise, features."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsig_jax.models.config import StyleGAN2Config, ada_channels, rosinality_channels
from fsig_jax.models.stylegan2 import Discriminator, Generator

SMALL = StyleGAN2Config(16, (32, 24, 16), (16, 24, 32), z_dim=32, w_dim=24, n_mlp=2,
                        mapping_hidden=20)


@pytest.fixture(scope='module')
def g_vars():
  return Generator(SMALL).init(jax.random.PRNGKey(0), jnp.zeros((2, SMALL.z_dim)))


@pytest.mark.parametrize('res,chans', [(8, (64, 32)), (1024, rosinality_channels(1024, 2))])
def test_shapes_at_any_power_of_two(res, chans):
  cfg = StyleGAN2Config(res, chans, chans, z_dim=512, w_dim=512)
  z = jnp.zeros((4, 512))
  v = jax.eval_shape(lambda: Generator(cfg).init(jax.random.PRNGKey(0), z))
  img = jax.eval_shape(lambda v: Generator(cfg).apply(v, z), v)
  assert img.shape == (4, res, res, 3)
  dv = jax.eval_shape(lambda: Discriminator(cfg).init(jax.random.PRNGKey(0), img))
  assert jax.eval_shape(lambda v: Discriminator(cfg).apply(v, img), dv).shape == (4, 1)
  assert cfg.num_ws == 2 * int(np.log2(res)) - 2


def test_channel_tables():
  assert rosinality_channels(256, 2) == (512, 512, 512, 512, 512, 256, 128)
  assert ada_channels(32, 2048, 64) == (64, 64, 64, 64)
  assert ada_channels(256) == (512, 512, 512, 512, 512, 256, 128)


def test_config_validation_names_the_problem():
  with pytest.raises(ValueError, match='power of two'):
    StyleGAN2Config(48, (8,) * 5, (8,) * 5)
  with pytest.raises(ValueError, match='g_channels needs 3 widths'):
    StyleGAN2Config(16, (8, 8), (8, 8, 8))
  with pytest.raises(ValueError, match='unknown StyleGAN2Config fields'):
    StyleGAN2Config.from_dict({'resolution': 16, 'g_chanels': (8, 8, 8)})


def test_style_mixing_extremes_and_split(g_vars):
  G = Generator(SMALL)
  z1, z2 = jax.random.normal(jax.random.PRNGKey(1), (2, 2, SMALL.z_dim))
  n = SMALL.num_ws
  only1 = G.apply(g_vars, z1)
  np.testing.assert_allclose(G.apply(g_vars, [z1, z2], inject_index=n), only1, atol=1e-6)
  np.testing.assert_allclose(G.apply(g_vars, [z1, z2], inject_index=0), G.apply(g_vars, z2),
                             atol=1e-6)
  ws = G.apply(g_vars, [z1, z2], inject_index=3, method=Generator.ws)
  w1, w2 = (G.apply(g_vars, z, method=Generator.map) for z in (z1, z2))
  np.testing.assert_allclose(ws[:, :3], jnp.repeat(w1[:, None], 3, 1), atol=1e-6)
  np.testing.assert_allclose(ws[:, 3:], jnp.repeat(w2[:, None], n - 3, 1), atol=1e-6)


def test_truncation_zero_gives_the_average_w(g_vars):
  G = Generator(SMALL)
  z = jax.random.normal(jax.random.PRNGKey(2), (2, SMALL.z_dim))
  center = jnp.arange(SMALL.w_dim, dtype=jnp.float32) / 10
  ws = G.apply(g_vars, z, truncation=0.0, truncation_latent=center, method=Generator.ws)
  np.testing.assert_allclose(ws, jnp.broadcast_to(center, ws.shape), atol=1e-6)
  v = {**g_vars, 'buffers': {**g_vars['buffers'], 'w_avg': center}}
  np.testing.assert_allclose(G.apply(v, z, truncation=0.0, method=Generator.ws), ws)


def test_noise_modes(g_vars):
  G = Generator(SMALL)
  p = jax.tree.map(lambda a: a, g_vars)
  # Give noise a visible effect.
  for blk in p['params']['synthesis'].values():
    for name, layer in blk.items():
      if name.startswith('conv'):
        layer['noise_strength'] = jnp.array(0.5)
  z = jax.random.normal(jax.random.PRNGKey(3), (2, SMALL.z_dim))
  const = G.apply(p, z)
  np.testing.assert_array_equal(const, G.apply(p, z))
  r1 = G.apply(p, z, noise_mode='random', rngs={'noise': jax.random.PRNGKey(0)})
  r2 = G.apply(p, z, noise_mode='random', rngs={'noise': jax.random.PRNGKey(1)})
  none = G.apply(p, z, noise_mode='none')
  assert not np.allclose(r1, r2) and not np.allclose(const, none)
  zero = {'b4.conv1': jnp.zeros((4, 4))}
  v = G.apply(p, z, noise_mode='const', noise=zero)
  assert not np.allclose(v, const)  # the override replaced one layer's noise
  with pytest.raises(ValueError, match='noise_mode'):
    G.apply(p, z, noise_mode='fixed')


def test_features_cover_every_layer(g_vars):
  z = jnp.zeros((2, SMALL.z_dim))
  img, feats = Generator(SMALL).apply(g_vars, z, return_features=True)
  assert set(feats) == {'b4.conv1', 'b4.img', 'b8.conv0', 'b8.conv1', 'b8.img',
                        'b16.conv0', 'b16.conv1', 'b16.img'}
  np.testing.assert_array_equal(feats['b16.img'], img)
  D = Discriminator(SMALL)
  dv = D.init(jax.random.PRNGKey(0), img)
  logits, dfeats = D.apply(dv, img, return_features=True)
  assert set(dfeats) == {'b16', 'b8', 'b4.conv', 'b4.fc', 'logits', 'b16.fromrgb',
                         'b16.conv0', 'b16.conv1', 'b8.conv0', 'b8.conv1'}
  assert dfeats['b16'].shape == (2, 8, 8, 24) and logits.shape == (2, 1)


def test_discriminator_inner_taps_are_rosinalitys_resblock_activations():
  """'b{res}.conv0' / '.conv1' are rosinality ResBlock conv1 / conv2 outputs
  (conv2 before the resnet sum's 1/sqrt(2)), recomputed here layer by layer
  from the block's own parameters; the block output is (conv2 + skip) / sqrt(2)."""
  from fsig_jax.nn.equalized import EqualConv2d
  img = jax.random.uniform(jax.random.PRNGKey(1), (2, 16, 16, 3), minval=-1, maxval=1)
  D = Discriminator(SMALL)
  dv = D.init(jax.random.PRNGKey(2), img)
  logits, f = D.apply(dv, img, return_features=True)
  np.testing.assert_array_equal(logits, D.apply(dv, img))  # the taps change nothing
  p = dv['params']
  conv = lambda name, *a, **k: EqualConv2d(*a, name=name, **k)  # noqa: E731
  x = conv('fromrgb', SMALL.d_width(16), 1, act='lrelu').apply(
      {'params': p['b16']['fromrgb']}, img)
  np.testing.assert_allclose(f['b16.fromrgb'], x, rtol=1e-5, atol=1e-6)
  for res in (16, 8):
    tmp, out, q = SMALL.d_width(res), SMALL.d_width(res // 2), p[f'b{res}']
    c0 = conv('conv0', tmp, 3, act='lrelu').apply({'params': q['conv0']}, x)
    c1 = conv('conv1', out, 3, down=2, act='lrelu').apply({'params': q['conv1']}, c0)
    skip = conv('skip', out, 1, down=2, use_bias=False).apply({'params': q['skip']}, x)
    np.testing.assert_allclose(f[f'b{res}.conv0'], c0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f[f'b{res}.conv1'], c1, rtol=1e-5, atol=1e-5)
    x = (c1 + skip) / np.sqrt(2)
    np.testing.assert_allclose(f[f'b{res}'], x, rtol=1e-5, atol=1e-5)
    assert f[f'b{res}.conv0'].shape == (2, res, res, tmp)
    assert f[f'b{res}.conv1'].shape == (2, res // 2, res // 2, out)


def test_discriminator_rejects_wrong_image_size():
  D = Discriminator(SMALL)
  with pytest.raises(ValueError, match='expects NHWC images of shape'):
    D.init(jax.random.PRNGKey(0), jnp.zeros((2, 3, 16, 16)))
