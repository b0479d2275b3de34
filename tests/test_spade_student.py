"""KDIT part 2's conditional SPADE student (models/students/spade_generator.py)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsig_jax.models import students
from fsig_jax.models.students.spade_generator import (CondDiscriminator, SPADEStudent,
                                                      SPADEStudentConfig, init_spade_student)

KEY = jax.random.PRNGKey(0)
TC = 5  # teacher channels of the tiny configs


def tiny(res, cond='spatial', **kw):
  kw = {'teacher_channels': TC, **kw}
  return SPADEStudentConfig(resolution=res, z_dim=8, cond=cond, cond_channels=3, nf=4,
                            max_channels=16, spade_hidden=8, **kw)


def normal(shape, key=1):
  return jax.random.normal(jax.random.PRNGKey(key), shape)


def conds(cfg, n=2, key=2, size=None):
  if cfg.cond == 'vector':
    return normal((n, cfg.cond_channels), key)
  s = size or cfg.resolution
  return jax.random.uniform(jax.random.PRNGKey(key), (n, s, s, cfg.cond_channels),
                            minval=-1, maxval=1)


def teacher(cfg, n=2, key=3):
  r = cfg.inject_resolution
  return normal((n, r, r, cfg.teacher_channels), key)


def gen(cfg, params, z, c, f=None, return_features=False):
  return SPADEStudent(cfg).apply({'params': params}, z, c, f, return_features=return_features)


@pytest.mark.parametrize('res', [16, 32])
@pytest.mark.parametrize('cond', ['spatial', 'vector'])
def test_shapes_and_range(res, cond):
  cfg = tiny(res, cond)
  p = init_spade_student(cfg, KEY, ndf=4, n_layers=2)
  z, c = normal((2, cfg.z_dim)), conds(cfg)
  for f in (None, teacher(cfg)):
    img, feats = gen(cfg, p['G'], z, c, f, return_features=True)
    assert img.shape == (2, res, res, 3)
    assert np.all(np.abs(np.asarray(img)) <= 1) and np.all(np.isfinite(img))
    assert sorted(feats) == list(cfg.scales) == [r for r in (4, 8, 16, 32) if r <= res]
    for r, h in feats.items():
      assert h.shape == (2, r, r, cfg.width(r))
  logits = CondDiscriminator(cfg, 4, 2).apply({'params': p['D']}, img, c)
  assert logits.shape == (2, res // 4 - 2, res // 4 - 2, 1)


def test_widths_and_inject_width():
  cfg = SPADEStudentConfig()  # 64 px: 1024, 512, 256, 128, 64 at 4 .. 64
  assert [cfg.width(r) for r in cfg.scales] == [1024, 512, 256, 128, 64]
  assert cfg.inject_width == 1024  # the 4x4 block's output, upsampled to 8x8
  # 256 px: the official widths 16nf (8, 16), 8nf, 4nf, 2nf, nf (32 .. 256)
  cfg = SPADEStudentConfig(resolution=256)
  assert [cfg.width(r) for r in cfg.scales] == [1024] * 3 + [512, 256, 128, 64]
  assert tiny(32, inject_resolution=4).inject_width == tiny(32).width(4)


def test_teacher_feature_enters_at_8x8():
  cfg = tiny(32)
  p = init_spade_student(cfg, KEY, ndf=4, n_layers=2)
  z, c = normal((2, cfg.z_dim)), conds(cfg)
  assert p['G']['f_proj']['kernel'].shape == (1, 1, TC, cfg.inject_width)
  img0, f0 = gen(cfg, p['G'], z, c, None, True)
  img1, f1 = gen(cfg, p['G'], z, c, teacher(cfg, key=3), True)
  img2, f2 = gen(cfg, p['G'], z, c, teacher(cfg, key=4), True)
  np.testing.assert_array_equal(f0[4], f1[4])  # below 8: untouched by f
  np.testing.assert_array_equal(f1[4], f2[4])
  for r in (8, 16, 32):
    assert not np.allclose(f1[r], f2[r]) and not np.allclose(f0[r], f1[r])
  assert not np.allclose(img1, img2)


def test_zero_f_proj_is_no_teacher():
  cfg = tiny(16)
  p = init_spade_student(cfg, KEY, ndf=4, n_layers=2)['G']
  p = {**p, 'f_proj': jax.tree.map(jnp.zeros_like, p['f_proj'])}
  z, c = normal((2, cfg.z_dim)), conds(cfg)
  np.testing.assert_array_equal(gen(cfg, p, z, c, teacher(cfg)), gen(cfg, p, z, c, None))


def test_teacher_feature_errors():
  cfg = tiny(16)
  p = init_spade_student(cfg, KEY, ndf=4, n_layers=2)['G']
  z, c = normal((2, cfg.z_dim)), conds(cfg)
  for shape in [(2, 16, 16, TC), (2, 8, 8, TC + 1), (1, 8, 8, TC), (2, 8, 8)]:
    with pytest.raises(ValueError, match='teacher features of shape'):
      gen(cfg, p, z, c, jnp.zeros(shape))
  cfg0 = tiny(16, teacher_channels=0)
  p0 = init_spade_student(cfg0, KEY, ndf=4, n_layers=2)['G']
  assert 'f_proj' not in p0
  with pytest.raises(ValueError, match='teacher_channels=0'):
    gen(cfg0, p0, z, c, jnp.zeros((2, 8, 8, TC)))
  with pytest.raises(ValueError, match='noise of shape'):
    gen(cfg, p, jnp.zeros((2, 7)), c)
  with pytest.raises(ValueError, match='conditions of shape'):
    gen(cfg, p, z, jnp.zeros((2, 16, 16, 4)))


def test_init_without_f_builds_f_proj():
  cfg = tiny(16)
  z, c = jnp.zeros((1, cfg.z_dim)), conds(cfg, n=1)
  a = SPADEStudent(cfg).init(KEY, z, c)['params']
  b = SPADEStudent(cfg).init(KEY, z, c, teacher(cfg, n=1))['params']
  assert jax.tree.map(jnp.shape, a) == jax.tree.map(jnp.shape, b)
  assert 'f_proj' in a


def test_vector_condition():
  cfg = tiny(16, 'vector')
  p = init_spade_student(cfg, KEY, ndf=4, n_layers=2)
  z = normal((2, cfg.z_dim))
  c1, c2 = conds(cfg, key=5), conds(cfg, key=6)
  assert not np.allclose(gen(cfg, p['G'], z, c1), gen(cfg, p['G'], z, c2))
  # the vector enters the same SPADE layers as a spatially constant map
  cfg_s = dataclasses.replace(cfg, cond='spatial')
  const = jnp.broadcast_to(c1[:, None, None, :], (2, 3, 3, 3))
  np.testing.assert_allclose(gen(cfg, p['G'], z, c1), gen(cfg_s, p['G'], z, const),
                             rtol=1e-5, atol=1e-6)


def test_spatial_condition_resized():
  cfg = tiny(32, 'spatial')
  p = init_spade_student(cfg, KEY, ndf=4, n_layers=2)['G']
  z = normal((2, cfg.z_dim))
  c8 = conds(cfg, size=8)
  c16 = jnp.repeat(jnp.repeat(c8, 2, axis=1), 2, axis=2)  # the same map, twice the size
  out8 = gen(cfg, p, z, c8)
  np.testing.assert_allclose(out8, gen(cfg, p, z, c16), rtol=1e-5, atol=1e-6)
  assert gen(cfg, p, z, conds(cfg, size=7)).shape == (2, 32, 32, 3)  # any size
  assert not np.allclose(out8, gen(cfg, p, z, conds(cfg, key=9, size=8)))


@pytest.mark.parametrize('cond', ['spatial', 'vector'])
def test_cond_discriminator(cond):
  cfg = tiny(32, cond)
  p = init_spade_student(cfg, KEY, ndf=4, n_layers=3)['D']
  assert p['patchgan']['conv0']['kernel'].shape == (4, 4, 3 + cfg.cond_channels, 4)
  d = CondDiscriminator(cfg, ndf=4, n_layers=3)
  x = jax.random.uniform(KEY, (2, 32, 32, 3), minval=-1, maxval=1)
  c1, c2 = conds(cfg, key=5, size=16), conds(cfg, key=6, size=16)
  l1 = d.apply({'params': p}, x, c1)
  assert l1.shape == (2, 2, 2, 1)
  assert not np.allclose(l1, d.apply({'params': p}, x, c2))
  with pytest.raises(ValueError, match='images'):
    d.apply({'params': p}, x[:, :16, :16], c1)
  with pytest.raises(ValueError, match='no output'):
    init_spade_student(tiny(16, cond), KEY, ndf=4, n_layers=3)


@pytest.mark.parametrize('kwargs,match', [
    ({'cond': 'label'}, 'cond'),
    ({'resolution': 48}, 'resolution'),
    ({'resolution': 4}, 'resolution'),
    ({'bottom_resolution': 2}, 'bottom_resolution'),
    ({'bottom_resolution': 6}, 'bottom_resolution'),
    ({'inject_resolution': 2}, 'inject_resolution'),
    ({'inject_resolution': 12}, 'inject_resolution'),
    ({'resolution': 32, 'inject_resolution': 64}, 'resolution'),
    ({'max_channels': 32}, 'max_channels'),
    ({'nf': 0}, 'nf'),
    ({'z_dim': 0}, 'z_dim'),
    ({'spade_hidden': 0}, 'spade_hidden'),
    ({'cond_channels': 0}, 'cond_channels'),
    ({'teacher_channels': -1}, 'teacher_channels'),
    ({'arch': 'unet_mspade'}, 'arch'),
])
def test_config_validation(kwargs, match):
  with pytest.raises(ValueError, match=match):
    SPADEStudentConfig(**kwargs)


def test_config_registry():
  cfg = tiny(32, 'vector')
  assert SPADEStudentConfig.from_dict(dataclasses.asdict(cfg)) == cfg
  assert students.CONFIGS['spade_student'] is SPADEStudentConfig
  assert 'spade_student' not in students.TRANSLATORS
  with pytest.raises(ValueError, match='unknown SPADEStudentConfig fields'):
    SPADEStudentConfig.from_dict({'resolution': 64, 'use_vae': True})
  for fn in (students.network, lambda c: students.init_student(c, KEY)):
    with pytest.raises(ValueError, match='spade_generator'):
      fn(cfg)


# --- official parameter count (SPADE architecture.py / normalization.py), no spectral norm ---

def _conv(i, o, k, bias=True):
  return i * o * k * k + (o if bias else 0)


def _spade(c, label_nc, hidden):
  return _conv(label_nc, hidden, 3) + 2 * _conv(hidden, c, 3)


def _block(fin, fout, label_nc, hidden):
  fmid = min(fin, fout)
  n = _spade(fin, label_nc, hidden) + _conv(fin, fmid, 3)
  n += _spade(fmid, label_nc, hidden) + _conv(fmid, fout, 3)
  if fin != fout:
    n += _spade(fin, label_nc, hidden) + _conv(fin, fout, 1, bias=False)
  return n


def expected_g_params(cfg):
  b = cfg.bottom_resolution
  n = cfg.z_dim * b * b * cfg.width(b) + b * b * cfg.width(b)  # fc
  fin = cfg.width(b)
  for r in cfg.scales:
    n += _block(fin, cfg.width(r), cfg.cond_channels, cfg.spade_hidden)
    fin = cfg.width(r)
  n += _conv(cfg.nf, 3, 3)  # conv_img
  if cfg.teacher_channels:
    n += _conv(cfg.teacher_channels, cfg.inject_width, 1)
  return n


def test_param_count_tiny():
  for cfg in (tiny(32), tiny(16, 'vector', teacher_channels=0)):
    p = init_spade_student(cfg, KEY, ndf=4, n_layers=2)
    assert students.param_count(p['G']) == expected_g_params(cfg)


def test_default_256_generator_eval_shape():
  cfg = SPADEStudentConfig(resolution=256, teacher_channels=512)
  p = jax.eval_shape(lambda k: init_spade_student(cfg, k), KEY)
  n = students.param_count(p['G'])
  print(f'SPADEStudent 256 px default widths (teacher_channels=512): {n:,} G params, '
        f'{students.param_count(p["D"]):,} D params')
  assert n == expected_g_params(cfg) == 96_766_915
  out, feats = jax.eval_shape(
      lambda p, z, c, f: SPADEStudent(cfg).apply({'params': p}, z, c, f, return_features=True),
      p['G'], jnp.zeros((1, 256)), jnp.zeros((1, 256, 256, 3)), jnp.zeros((1, 8, 8, 512)))
  assert out.shape == (1, 256, 256, 3)
  assert {r: h.shape[-1] for r, h in feats.items()} == {
      4: 1024, 8: 1024, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64}
