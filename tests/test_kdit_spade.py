"""KDIT part 2: the SPADE students' distillation (spatial / vector) and stage 2."""
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from engine_utils import leaves_with_paths, short_run
from fsig_jax import api
from fsig_jax.distill import kdit_spade
from fsig_jax.errors import ConfigError
from fsig_jax.models import presets
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.functional import Models

sys.path.insert(0, str(ROOT))
from configs import kdit_spade as kdit_spade_config  # noqa: E402  pylint: disable=g-import-not-at-top

RES = 32
TINY = {'z_dim': 8, 'nf': 4, 'max_channels': 16, 'spade_hidden': 8, 'ndf': 4}


def tiny_teacher():
  return init_bundle(presets.parse_random_spec(f'random:{RES}'), jax.random.PRNGKey(0),
                     source='teacher')


def cfg(arg, steps=1, **kw):
  c = kdit_spade_config.get_config(arg)
  c.teacher.checkpoint = f'random:{RES}'
  c.student.update(TINY)
  c.hparams.batch_size = 2
  return short_run(c, steps, **kw)


def test_losses_by_hand():
  real, fake = jnp.array([2.0, 0.5]), jnp.array([-2.0, 0.5])
  # mean relu(1 - real) = (0 + 0.5) / 2; mean relu(1 + fake) = (0 + 1.5) / 2
  assert float(kdit_spade.hinge_d(real, fake)) == pytest.approx(1.0)
  assert float(kdit_spade.hinge_g(fake)) == pytest.approx(0.75)
  a, b = jnp.zeros((1, 2)), jnp.array([[1.0, 3.0]])
  assert float(kdit_spade.diversity(a, b)) == pytest.approx(-2.0)
  # Its sign: a gradient step on +lambda * diversity moves the two outputs apart.
  g = jax.grad(lambda x: 0.1 * kdit_spade.diversity(x, b))(a)
  assert float(jnp.abs((a - 0.5 * g) - b).mean()) > 2.0


def test_spatial_distillation_conditions_are_one_in_g_and_zero_in_d():
  c = cfg('distill,spatial')
  scfg = kdit_spade.student_config(c, RES, 3, 8)
  c_g, c_d = kdit_spade.dagger_conditions(scfg, 2)
  assert c_g.shape == c_d.shape == (2, RES, RES, 3)
  assert float(c_g.min()) == float(c_g.max()) == 1.0
  assert float(jnp.abs(c_d).max()) == 0.0


def test_semantic_encoder_is_the_teacher_d_without_its_last_layer():
  t = tiny_teacher()
  c = cfg('distill,vector')
  tcfg = t.config
  state = kdit_spade.stage1_init(c, kdit_spade.student_config(c, RES, tcfg.d_width(4),
                                                              tcfg.g_width(8)),
                                 t, jax.random.PRNGKey(0))
  for a, b in zip(jax.tree.leaves(state['nets']['S_E']), jax.tree.leaves(t.nets['D']['params'])):
    np.testing.assert_array_equal(a, b)
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, RES, RES, 3)), jnp.float32)
  m = Models(tcfg)
  c_x = kdit_spade.semantic_encoder(m, state['nets']['S_E'], x)
  logits, feats = m.disc(t.nets['D']['params'], x)
  np.testing.assert_array_equal(c_x, feats['b4.fc'])  # the input of D's last layer
  assert c_x.shape == (2, tcfg.d_width(4))


@pytest.mark.parametrize('cond', ['spatial', 'vector'])
def test_stage1_one_step_from_config(cond):
  state, model = api.train(cfg(f'distill,{cond}'), None)  # the teacher from its config
  assert int(state['step']) == 1 and model.config.cond == cond
  assert ('S_E' in state['nets']) == (cond == 'vector')


@pytest.mark.slow
def test_stage1_kill_and_resume_bit_identical(tmp_path):
  t = tiny_teacher()
  _, a = kdit_spade.train(cfg('distill,vector', steps=3), str(tmp_path / 'a'), teacher=t)
  kdit_spade.train(cfg('distill,vector', steps=1), str(tmp_path / 'b'), teacher=t)
  _, b = kdit_spade.train(cfg('distill,vector', steps=3), str(tmp_path / 'b'), teacher=t)
  la, lb = leaves_with_paths(a.nets), leaves_with_paths(b.nets)
  for k in la:
    np.testing.assert_array_equal(la[k], lb[k], err_msg=k)


def _pairs(n=4, cond_dim=None):
  rng = np.random.default_rng(0)
  img = rng.uniform(-1, 1, (n, RES, RES, 3)).astype(np.float32)
  cond = (rng.standard_normal((n, cond_dim)).astype(np.float32) if cond_dim else
          rng.uniform(-1, 1, (n, RES, RES, 3)).astype(np.float32))
  return cond, img


@pytest.mark.slow
def test_stage2_from_stage1_and_from_scratch(tmp_path):
  t = tiny_teacher()
  s1 = tmp_path / 's1'
  kdit_spade.train(cfg('distill,vector'), str(s1), teacher=t)
  c = cfg('stage2,vector', init=str(s1))
  state, model = kdit_spade.train(c, str(tmp_path / 's2'), data=_pairs(cond_dim=12))
  assert 'f_proj' not in state['nets']['G']  # no teacher feature in stage 2
  assert state['nets']['cond_in']['kernel'].shape == (12, t.config.d_width(4))
  state, _ = kdit_spade.train(cfg('scratch,spatial'), None, data=_pairs())
  assert int(state['step']) == 1
  with pytest.raises(ConfigError, match='--config.init'):
    kdit_spade.train(cfg('stage2,spatial'), None, data=_pairs())


def test_config_errors():
  with pytest.raises(ConfigError, match='bad argument'):
    kdit_spade_config.get_config('distill,audio')
  with pytest.raises(ConfigError, match='cond'):
    kdit_spade.train(cfg('distill,spatial', cond='text'), None)


@pytest.mark.slow
def test_stage2_kill_and_resume_bit_identical(tmp_path):
  data = _pairs()
  _, a = kdit_spade.train(cfg('scratch,spatial', steps=3), str(tmp_path / 'a'), data=data)
  kdit_spade.train(cfg('scratch,spatial', steps=1), str(tmp_path / 'b'), data=data)
  _, b = kdit_spade.train(cfg('scratch,spatial', steps=3), str(tmp_path / 'b'), data=data)
  la, lb = leaves_with_paths(a.nets), leaves_with_paths(b.nets)
  assert la.keys() == lb.keys()
  for k in la:
    np.testing.assert_array_equal(la[k], lb[k], err_msg=k)
