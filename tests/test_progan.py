"""ProGAN networks: sizes as in the paper, fade-in limits, pixel norm, bad stages."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsig_jax.models.progan import (ProGANConfig, ProGANDiscriminator, ProGANGenerator,
                                    downscale2d, init_progan, progan_channels, upscale2d)

CFG = ProGANConfig(32, (64, 64, 32, 16), z_dim=32, d_hidden=64)


@pytest.fixture(scope='module')
def nets():
  return init_progan(CFG, jax.random.PRNGKey(0))


def test_parameter_counts_match_the_paper():
  # Karras et al. 2018, Table 2 (1024x1024): 23.1M parameters in G and in D.
  cfg = ProGANConfig(1024, progan_channels(1024))
  assert cfg.channels == (512, 512, 512, 512, 256, 128, 64, 32, 16)
  shapes = jax.eval_shape(lambda: init_progan(cfg, jax.random.PRNGKey(0)))
  for net in ('G', 'D'):
    n = sum(x.size for x in jax.tree.leaves(shapes[net]))
    assert round(n / 1e6, 1) == 23.1, (net, n)


def test_names_match_the_filter_methods(nets):
  g, d = nets['G']['params'], nets['D']['params']
  assert set(g['synthesis']['b4']) == {'dense', 'conv1', 'torgb'}
  assert set(g['synthesis']['b16']) == {'conv0', 'conv1', 'torgb'}
  assert g['synthesis']['b16']['conv0']['kernel'].shape == (3, 3, 64, 32)
  assert set(d['b16']) == {'fromrgb', 'conv0', 'conv1'}
  assert d['b16']['conv1']['kernel'].shape == (3, 3, 32, 64)  # nf(res-1) -> nf(res-2)
  assert set(d['b4']) == {'fromrgb', 'conv', 'fc', 'out'}


def test_fade_in_limits(nets):
  G, D = ProGANGenerator(CFG), ProGANDiscriminator(CFG)
  z = jax.random.normal(jax.random.PRNGKey(1), (4, CFG.z_dim))
  full = G.apply(nets['G'], z)
  np.testing.assert_allclose(G.apply(nets['G'], z, resolution=32, alpha=1.0), full, atol=1e-6)
  # alpha = 0: the new block contributes nothing, the previous stage is upsampled.
  at8 = G.apply(nets['G'], z, resolution=8, alpha=1.0)
  at16 = G.apply(nets['G'], z, resolution=16, alpha=0.0)
  np.testing.assert_allclose(at16, upscale2d(at8), atol=1e-6)
  img16 = jax.random.normal(jax.random.PRNGKey(2), (4, 16, 16, 3))
  np.testing.assert_allclose(D.apply(nets['D'], img16, resolution=16, alpha=0.0),
                             D.apply(nets['D'], downscale2d(img16), resolution=8), atol=1e-5)
  assert not np.allclose(D.apply(nets['D'], img16, resolution=16, alpha=0.5),
                         D.apply(nets['D'], img16, resolution=16, alpha=0.0))


def test_pixel_norm_after_every_block(nets):
  z = 3.0 * jax.random.normal(jax.random.PRNGKey(3), (2, CFG.z_dim))
  _, feats = ProGANGenerator(CFG).apply(nets['G'], z, return_features=True)
  for name, f in feats.items():
    np.testing.assert_allclose(jnp.mean(jnp.square(f), axis=-1), 1.0, rtol=1e-4, err_msg=name)


def test_bad_stage_and_config_are_clear(nets):
  with pytest.raises(ValueError, match='grown so far'):
    ProGANGenerator(CFG).apply(nets['G'], jnp.zeros((1, CFG.z_dim)), resolution=64)
  with pytest.raises(ValueError, match='images are 16px but the discriminator is at 32px'):
    ProGANDiscriminator(CFG).apply(nets['D'], jnp.zeros((4, 16, 16, 3)), resolution=32)
  with pytest.raises(ValueError, match='power of two'):
    ProGANConfig(48, (1, 2))
