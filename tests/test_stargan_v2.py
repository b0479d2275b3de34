"""KDIT's StarGAN v2 student (clovaai/stargan-v2 core/model.py) and nn.adain.AdaIN."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsig_jax.models import students
from fsig_jax.models.students import stargan_v2 as sg
from fsig_jax.models.students.stargan_v2 import StarGANv2Config
from fsig_jax.nn.adain import AdaIN
from fsig_jax.nn.norm import instance_norm

KEY = jax.random.PRNGKey(0)


def tiny(res, **kw):
  return StarGANv2Config(resolution=res, num_domains=3, style_dim=8, latent_dim=4,
                         mapping_hidden=16, max_conv_dim=16, dim_in=8, **kw)


def images(res, n=2, key=1):
  return jax.random.uniform(jax.random.PRNGKey(key), (n, res, res, 3), minval=-1, maxval=1)


def normal(shape, key=2):
  return jax.random.normal(jax.random.PRNGKey(key), shape)


# --- official parameter counts, layer by layer from core/model.py ------------------------

def _conv(i, o, k, bias=True):
  return i * o * k * k + (o if bias else 0)


def _linear(i, o):
  return i * o + o


def _resblk(di, do, normalize=False):
  n = _conv(di, di, 3) + _conv(di, do, 3)
  n += 2 * 2 * di if normalize else 0  # InstanceNorm2d(di, affine=True) x 2
  return n + (_conv(di, do, 1, bias=False) if di != do else 0)


def _adainresblk(di, do, style_dim):
  n = _conv(di, do, 3) + _conv(do, do, 3) + _linear(style_dim, 2 * di) + _linear(style_dim, 2 * do)
  return n + (_conv(di, do, 1, bias=False) if di != do else 0)


def official_generator(img_size, style_dim=64, max_conv_dim=512, w_hpf=0):
  dim_in = 2 ** 14 // img_size
  n = _conv(3, dim_in, 3) + 2 * dim_in + _conv(dim_in, 3, 1)  # from_rgb, to_rgb
  repeat_num = int(math.log2(img_size)) - 4 + (1 if w_hpf > 0 else 0)
  for _ in range(repeat_num):
    dim_out = min(dim_in * 2, max_conv_dim)
    n += _resblk(dim_in, dim_out, True) + _adainresblk(dim_out, dim_in, style_dim)
    dim_in = dim_out
  for _ in range(2):
    n += _resblk(dim_out, dim_out, True) + _adainresblk(dim_out, dim_out, style_dim)
  return n  # HighPass holds a buffer, no parameters


def official_mapping(latent_dim=16, style_dim=64, num_domains=2):
  return (_linear(latent_dim, 512) + 3 * _linear(512, 512)
          + num_domains * (3 * _linear(512, 512) + _linear(512, style_dim)))


def _official_trunk(img_size, max_conv_dim=512):
  dim_in = 2 ** 14 // img_size
  n = _conv(3, dim_in, 3)
  for _ in range(int(math.log2(img_size)) - 2):
    dim_out = min(dim_in * 2, max_conv_dim)
    n += _resblk(dim_in, dim_out)
    dim_in = dim_out
  return n + _conv(dim_out, dim_out, 4), dim_out


def official_style_encoder(img_size, style_dim=64, num_domains=2):
  n, dim_out = _official_trunk(img_size)
  return n + num_domains * _linear(dim_out, style_dim)


def official_discriminator(img_size, num_domains=2):
  n, dim_out = _official_trunk(img_size)
  return n + _conv(dim_out, num_domains, 1)


@pytest.mark.parametrize('res', [64, 256])
def test_param_counts_match_official(res):
  cfg = StarGANv2Config(resolution=res)
  p = jax.eval_shape(lambda: sg.init_stargan(cfg, KEY))
  got = {k: students.param_count(v) for k, v in p.items()}
  assert got == {'G': official_generator(res), 'mapping': official_mapping(),
                 'style': official_style_encoder(res), 'D': official_discriminator(res)}
  if res == 256:  # the official AFHQ networks (w_hpf = 0)
    assert got == {'G': 33_892_995, 'mapping': 2_438_272, 'style': 20_916_928, 'D': 20_852_290}


# --- config -----------------------------------------------------------------------------

def test_config():
  cfg = StarGANv2Config()
  assert (cfg.width0, cfg.g_repeat_num, cfg.d_repeat_num) == (256, 2, 4)
  assert StarGANv2Config(resolution=256).width0 == 64
  assert tiny(32).width0 == 8 and tiny(32).widths(3) == (8, 16, 16, 16)
  assert StarGANv2Config.from_dict(dataclasses.asdict(cfg)) == cfg
  assert students.CONFIGS['stargan_v2'] is StarGANv2Config
  assert 'stargan_v2' not in students.TRANSLATORS
  with pytest.raises(ValueError, match='four networks'):
    students.init_student(cfg, KEY)
  with pytest.raises(ValueError, match='unknown'):
    StarGANv2Config.from_dict({'resolution': 64, 'w_hpf': 1})


@pytest.mark.parametrize('kw,match', [
    ({'resolution': 8}, 'resolution'), ({'resolution': 48}, 'resolution'),
    ({'num_domains': 0}, 'num_domains'), ({'style_dim': 0}, 'style_dim'),
    ({'mapping_hidden': 0}, 'mapping_hidden'), ({'dim_in': -1}, 'dim_in'),
    ({'resolution': 32768}, 'dim_in'), ({'arch': 'pix2pix'}, 'arch')])
def test_config_validation(kw, match):
  with pytest.raises(ValueError, match=match):
    StarGANv2Config(**kw)


# --- shapes and features ----------------------------------------------------------------

@pytest.mark.parametrize('res', [16, 32])
def test_shapes_and_features(res):
  cfg = tiny(res)
  nets = sg.networks(cfg)
  params = sg.init_stargan(cfg, KEY)
  x, y = images(res), jnp.array([0, 2])
  s = nets['mapping'].apply({'params': params['mapping']}, normal((2, 4)), y)
  assert s.shape == (2, 8)
  img, feats = nets['G'].apply({'params': params['G']}, x, s, return_features=True)
  assert img.shape == (2, res, res, 3)
  bottom = res // 2 ** cfg.g_repeat_num
  enc_sizes = [res // 2 ** i for i in range(1, cfg.g_repeat_num + 1)] or [res]
  assert sorted(feats) == ['dec', 'enc']
  assert sorted(feats['enc']) == sorted(enc_sizes)
  assert sorted(feats['dec']) == [bottom * 2 ** i for i in range(cfg.g_repeat_num + 1)]
  w = cfg.widths(cfg.g_repeat_num)
  for size, f in feats['enc'].items():
    assert f.shape == (2, size, size, w[int(math.log2(res // size))])
  for size, f in feats['dec'].items():
    assert f.shape == (2, size, size, w[int(math.log2(res // size))])
  # encode / decode are the two halves of __call__
  h, enc = nets['G'].apply({'params': params['G']}, x, method=sg.Generator.encode)
  assert h.shape == (2, bottom, bottom, w[-1])
  np.testing.assert_array_equal(h, feats['enc'][bottom])
  img2, dec = nets['G'].apply({'params': params['G']}, h, s, method=sg.Generator.decode)
  np.testing.assert_allclose(img2, img, atol=1e-5)
  assert sorted(dec) == sorted(feats['dec'])
  np.testing.assert_allclose(nets['G'].apply({'params': params['G']}, x, s), img, atol=1e-5)
  # style encoder and discriminator: features at res/2 ... 4
  dw = cfg.widths(cfg.d_repeat_num)
  for name, out_shape in (('style', (2, 8)), ('D', (2,))):
    out, feats = nets[name].apply({'params': params[name]}, x, y, return_features=True)
    assert out.shape == out_shape
    assert sorted(feats) == [4 * 2 ** i for i in range(cfg.d_repeat_num)]
    for size, f in feats.items():
      assert f.shape == (2, size, size, dw[int(math.log2(res // size))])
    np.testing.assert_array_equal(nets[name].apply({'params': params[name]}, x, y), out)


def test_bad_inputs():
  cfg = tiny(16)
  nets = sg.networks(cfg)
  params = sg.init_stargan(cfg, KEY)
  with pytest.raises(ValueError, match='images'):
    nets['D'].apply({'params': params['D']}, images(32), jnp.array([0, 1]))
  with pytest.raises(ValueError, match='labels'):
    nets['style'].apply({'params': params['style']}, images(16), jnp.array([0.0, 1.0]))
  with pytest.raises(ValueError, match='styles'):
    nets['G'].apply({'params': params['G']}, images(16), jnp.zeros((2, 5)))


# --- AdaIN and the residual blocks ------------------------------------------------------

def test_adain():
  x = normal((2, 4, 4, 3)) * 3 + 1
  s = normal((2, 5), key=3)
  ada = AdaIN(3)
  p = ada.init(KEY, x, s)['params']
  assert p['fc']['kernel'].shape == (5, 6)
  zero = jax.tree.map(jnp.zeros_like, p)
  np.testing.assert_allclose(ada.apply({'params': zero}, x, s), instance_norm(x), atol=1e-6)
  # bias only: gamma, beta = first / second half of fc(s)
  b = jnp.array([0.5, -1.0, 2.0, 0.1, 0.2, 0.3])
  out = ada.apply({'params': {'fc': {'kernel': zero['fc']['kernel'], 'bias': b}}}, x, s)
  np.testing.assert_allclose(out, instance_norm(x) * (1 + b[:3]) + b[3:], atol=1e-5)


def _np_conv(x, w, b=None):
  """'SAME' cross-correlation, NHWC x, HWIO w (odd kernel) in numpy."""
  k = w.shape[0]
  xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  n, hh, ww, _ = x.shape
  out = np.zeros((n, hh, ww, w.shape[-1]))
  for i in range(hh):
    for j in range(ww):
      out[:, i, j] = np.einsum('nabc,abco->no', xp[:, i:i + k, j:j + k], w)
  return out + (0 if b is None else b)


def _np_pool(x):
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _np_lrelu(x):
  return np.where(x >= 0, x, 0.2 * x)


def test_resblk_by_hand():
  x = np.asarray(normal((1, 4, 4, 2)))
  blk = sg.ResBlk(3, downsample=True)
  p = jax.tree.map(np.asarray, blk.init(KEY, x)['params'])
  assert sorted(p) == ['conv1', 'conv1x1', 'conv2'] and 'bias' not in p['conv1x1']
  sc = _np_pool(_np_conv(x, p['conv1x1']['kernel']))
  h = _np_pool(_np_conv(_np_lrelu(x), p['conv1']['kernel'], p['conv1']['bias']))
  h = _np_conv(_np_lrelu(h), p['conv2']['kernel'], p['conv2']['bias'])
  np.testing.assert_allclose(blk.apply({'params': p}, x), (sc + h) / np.sqrt(2), atol=1e-5)
  # normalize=True, same widths: identity shortcut, affine instance norms (scale 1, bias 0)
  blk = sg.ResBlk(2, normalize=True)
  p = blk.init(KEY, x)['params']
  assert sorted(p) == ['conv1', 'conv2', 'norm1', 'norm2']
  p = {**p, 'conv2': jax.tree.map(jnp.zeros_like, p['conv2'])}  # residual 0
  np.testing.assert_allclose(blk.apply({'params': p}, x), x / np.sqrt(2), atol=1e-6)


def test_adainresblk_shortcut():
  x, s = normal((2, 4, 4, 3)), normal((2, 5), key=3)
  for dim_out in (3, 4):
    blk = sg.AdainResBlk(dim_out, upsample=True)
    p = blk.init(KEY, x, s)['params']
    p = {**p, 'conv2': jax.tree.map(jnp.zeros_like, p['conv2'])}  # residual 0
    up = np.repeat(np.repeat(np.asarray(x), 2, axis=1), 2, axis=2)
    want = up if dim_out == 3 else np.einsum('nhwc,co->nhwo', up, p['conv1x1']['kernel'][0, 0])
    np.testing.assert_allclose(blk.apply({'params': p}, x, s), want / np.sqrt(2), atol=1e-5)


# --- per-domain heads -------------------------------------------------------------------

def test_heads_selected_by_y():
  cfg = tiny(16)
  nets = sg.networks(cfg)
  params = sg.init_stargan(cfg, KEY)
  z, x = normal((3, 4)), images(16, n=3)
  y = jnp.array([2, 0, 1])
  cases = (('mapping', z), ('style', x), ('D', x))
  for name, inp in cases:
    def f(yy, name=name, inp=inp):
      return nets[name].apply({'params': params[name]}, inp, yy)
    every = f(None)
    assert every.shape[:2] == (3, cfg.num_domains)
    out = f(y)
    onehot = jax.nn.one_hot(y, cfg.num_domains)
    np.testing.assert_allclose(out, jnp.einsum('nd,nd...->n...', onehot, every), atol=1e-6)
    for k in range(cfg.num_domains):
      np.testing.assert_array_equal(f(jnp.full((3,), k)), every[:, k])
    assert not np.allclose(f(y[::-1]), out)  # another label, another head


def test_copy_head_and_init_heads_from():
  cfg = tiny(16)
  nets = sg.networks(cfg)
  params = sg.init_stargan(cfg, KEY)
  z, x = normal((2, 4)), images(16)
  for name, inp in (('mapping', z), ('style', x), ('D', x)):
    p = params[name]
    before = jax.tree.map(np.array, p)
    q = sg.copy_head(p, 0, 2)
    jax.tree.map(np.testing.assert_array_equal, p, before)  # pure
    def f(pp, name=name, inp=inp):
      return nets[name].apply({'params': pp}, inp, None)
    a, b = f(p), f(q)
    np.testing.assert_array_equal(b[:, 2], a[:, 0])
    np.testing.assert_array_equal(b[:, :2], a[:, :2])
    assert not np.allclose(a[:, 2], a[:, 0])
    r = f(sg.init_heads_from(p, src=1))
    for k in range(cfg.num_domains):
      np.testing.assert_array_equal(r[:, k], a[:, 1])
    assert sg.num_heads(p) == 3
    with pytest.raises(KeyError, match='out of range'):
      sg.copy_head(p, 0, 3)
  with pytest.raises(KeyError, match='heads'):
    sg.copy_head(params['G'], 0, 1)
