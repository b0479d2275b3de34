"""KDIT: style-mixed triplets, stage-1 distillation, StarGAN v2 stage 2 / scratch."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from engine_utils import leaves_with_paths, short_run
from fsig_jax import api
from fsig_jax.distill import kdit, stargan
from fsig_jax.errors import ConfigError
from fsig_jax.models import presets
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.functional import Models
from fsig_jax.models.students import stargan_v2

sys.path.insert(0, str(ROOT))
from configs import kdit_anime  # noqa: E402  pylint: disable=g-import-not-at-top

RES = 32
TINY = {'dim_in': 8, 'max_conv_dim': 16, 'style_dim': 8, 'mapping_hidden': 16}


def tiny_teacher():
  return init_bundle(presets.parse_random_spec(f'random:{RES}'), jax.random.PRNGKey(0),
                     source='teacher')


# ----------------------------------------------------------------------------- triplets


def test_phi_puts_s1_in_exactly_the_first_four_inputs():
  w1, w2 = jnp.ones((2, 3)), -jnp.ones((2, 3))
  ws = kdit.phi(w1, w2, 10, 4)
  assert ws.shape == (2, 10, 3)
  np.testing.assert_array_equal(ws[:, :4], 1.0)
  np.testing.assert_array_equal(ws[:, 4:], -1.0)


def test_triplets_share_noise_and_8x8_features():
  t = tiny_teacher()
  g = t.nets['G_ema']
  fn = jax.jit(kdit.make_triplets(t.config, 2, 4, 1.0))
  out = fn((g['params'], g['buffers']), jax.random.PRNGKey(3))
  f1, fy = out['x1_feats'], out['y_feats']
  for k in ('b4.conv1', 'b8.conv0', 'b8.conv1'):  # ws 0-3: s1 on both sides, same noise
    np.testing.assert_array_equal(f1[k], fy[k], err_msg=k)
  assert not np.allclose(f1['b16.conv1'], fy['b16.conv1'])  # ws 4+: s2
  assert not np.allclose(out['x1'], out['x2'])
  # y is G'(Phi(s1, s2)) with the one noise draw: recompute it through the teacher.
  m = Models(t.config)
  w1 = m.map(g['params'], g['buffers'], out['z1'])
  w2 = m.map(g['params'], g['buffers'], out['z2'])
  kn = jax.random.split(jax.random.PRNGKey(3), 3)[2]
  y = m.synth(g['params'], g['buffers'], kdit.phi(w1, w2, t.config.num_ws, 4), kn)
  np.testing.assert_allclose(out['y'], jnp.clip(y, -1, 1), atol=1e-5)
  with pytest.raises(ConfigError, match='inject_index'):
    kdit.make_triplets(t.config, 2, t.config.num_ws, 1.0)
  # KD*: no triplets, x2 = y = x1.
  star = jax.jit(kdit.make_triplets(t.config, 2, 4, 1.0, triplets=False))(
      (g['params'], g['buffers']), jax.random.PRNGKey(3))
  np.testing.assert_array_equal(star['x2'], star['x1'])
  np.testing.assert_array_equal(star['y'], star['x1'])


# ----------------------------------------------------------------------------- alignment


def _student_cfg():
  return stargan.student_config(TINY, RES, latent_dim=tiny_teacher().config.z_dim)


def test_levels_paired_by_size_and_projection_shapes():
  t = tiny_teacher()
  scfg = _student_cfg()
  sw, tw = kdit.feature_widths(scfg, t.config)
  # teacher D: b32 -> 16, b16 -> 8, b8 -> 4, b4.conv -> 4; teacher G: b{r}.conv1 -> r.
  assert sorted(tw['enc']) == [4, 8, 16]
  assert sorted(tw['dec']) == [4, 8, 16, 32]
  proj = kdit.init_projections(jax.random.PRNGKey(0), sw, tw)
  for term in ('enc', 'style', 'dec'):
    sizes = kdit.pairs(sw[term], tw[term])
    assert sizes and sorted(int(k[1:]) for k in proj[term]) == sizes
    for size in sizes:
      assert proj[term][f's{size}']['kernel'].shape == (sw[term][size], tw[term][size])
  assert kdit.pairs({32: 1, 16: 1, 8: 1}, {16: 1, 8: 1, 4: 1}) == [8, 16]


def test_aligned_l1_by_hand():
  student = {4: jnp.ones((1, 4, 4, 2)), 8: jnp.zeros((1, 8, 8, 2))}
  teacher = {4: jnp.full((1, 4, 4, 3), 0.5), 8: jnp.ones((1, 8, 8, 3))}
  k = jnp.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])  # student (1, 1) -> (1, 1, 2)
  proj = {'s4': {'kernel': k, 'bias': jnp.zeros(3)}, 's8': {'kernel': k, 'bias': jnp.ones(3)}}
  # size 4: |(1, 1, 2) - 0.5| mean = (0.5 + 0.5 + 1.5) / 3; size 8: |1 - 1| = 0
  assert float(kdit.aligned_l1(proj, student, teacher)) == pytest.approx(2.5 / 3)
  g = jax.grad(lambda t: kdit.aligned_l1(proj, student, t))(teacher)
  assert all(float(jnp.abs(v).sum()) == 0 for v in g.values())  # the teacher side is constant


def test_bce_and_r1_by_hand():
  logits = jnp.array([0.0, 2.0])
  want = np.mean([np.log(2), np.log1p(np.exp(-2.0))])
  assert float(stargan.bce(logits, 1.0)) == pytest.approx(want, rel=1e-6)
  assert float(stargan.bce(logits, 0.0)) == pytest.approx(np.mean([np.log(2),
                                                                   2 + np.log1p(np.exp(-2.0))]))

  class Linear:  # D(x, y) = 3 * sum(x): grad 3 everywhere
    @staticmethod
    def apply(params, x, y):
      del params, y
      return 3.0 * jnp.sum(x, axis=(1, 2, 3))
  x = jnp.zeros((2, 2, 2, 1))
  assert float(stargan.r1(Linear, {}, x, None)) == pytest.approx(0.5 * 9 * 4)


def test_stage2_init_copies_head_zero_into_every_head():
  scfg = stargan.student_config(dict(TINY, num_domains=3), RES, latent_dim=8)
  params = stargan.init_params(scfg, jax.random.PRNGKey(0))
  bundle = stargan.student_bundle(scfg, params, {k: params[k] for k in stargan.EMA_NETS}, 'x')
  out = stargan.stage2_init(bundle)
  for net in ('mapping', 'style'):
    heads = {k: v for k, v in out[net].items() if k.startswith('unshared')}
    assert len(heads) == 3
    for k in heads:
      for a, b in zip(jax.tree.leaves(heads[k]), jax.tree.leaves(params[net]['unshared_0'])):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(params[net]['unshared_1']), jax.tree.leaves(params[net]['unshared_0'])))
  # D's heads are output channels of its last layer: every channel equals channel 0.
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, RES, RES, 3)), jnp.float32)
  d = stargan_v2.Discriminator(scfg)
  logits = [d.apply({'params': out['D']}, x, jnp.full((2,), k, jnp.int32)) for k in range(3)]
  np.testing.assert_allclose(logits[1], logits[0], rtol=1e-6)
  np.testing.assert_allclose(logits[2], logits[0], rtol=1e-6)


def test_stargan_student_translates_by_reference_and_by_seed():
  scfg = stargan.student_config(TINY, RES, latent_dim=4)
  params = stargan.init_params(scfg, jax.random.PRNGKey(0))
  student = api.StarGANStudent(stargan.student_bundle(scfg, params, params, 'x'))
  x = _domains()[0]
  by_ref = student(x, 1, reference=_domains()[1])
  assert by_ref.shape == x.shape and np.abs(by_ref).max() <= 1
  assert not np.allclose(student(x, 1, seed=0), student(x, 1, seed=1))
  assert not np.allclose(student(x, 0, seed=0), student(x, 1, seed=0))  # per-domain heads
  with pytest.raises(ValueError, match='exactly one of reference'):
    student(x, 1)
  with pytest.raises(ValueError, match=r'domain 2 is not in \[0, 2\)'):
    student(x, 2, seed=0)
  with pytest.raises(ValueError, match='2 references for 3 images'):
    student(x, 1, reference=x[:2])


# ----------------------------------------------------------------------------- the trainers


def stage1_config(ablation='', steps=2, **kw):
  c = kdit_anime.get_config('distill' + (f',{ablation}' if ablation else ''))
  c.teacher.checkpoint = f'random:{RES}'
  c.student.update(TINY)
  return short_run(c, steps, **kw)


def stage2_config(stage='scratch', steps=2, **kw):
  c = kdit_anime.get_config(stage)
  c.student.update(TINY)
  c.data.resolution = RES
  c.hparams.batch_size = 2
  return short_run(c, steps, **kw)


def _domains(n=3):
  rng = np.random.default_rng(0)
  return [rng.uniform(-1, 1, (n, RES, RES, 3)).astype(np.float32) for _ in range(2)]


def _same(a, b):
  a, b = leaves_with_paths(a), leaves_with_paths(b)
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.slow
def test_stage1_one_step_from_config_then_stage2_from_it(tmp_path):
  s1 = tmp_path / 's1'
  state, model = api.train(stage1_config(steps=1), str(s1))
  assert int(state['step']) == 1 and model.config.arch == 'stargan_v2'
  assert model.config.latent_dim == tiny_teacher().config.z_dim  # the teacher's z
  c = stage2_config('stage2', steps=1, init=str(s1))
  state2, model2 = stargan.train(c, str(tmp_path / 's2'), domains=_domains())
  assert int(state2['step']) == 1
  student = api.load_student(str(tmp_path / 's2'))
  x = _domains()[0]
  assert student(x, 1, reference=_domains()[1][:1]).shape == x.shape
  np.testing.assert_array_equal(student(x, 1, seed=4), student(x, 1, seed=4))
  from fsig_jax.data.images import write_image_folder  # pylint: disable=g-import-not-at-top
  write_image_folder(x, tmp_path / 'in', names=['a', 'b', 'c'])
  write_image_folder(x[:1], tmp_path / 'ref')
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  cmd = [sys.executable, str(ROOT / 'launch' / 'translate.py'), f'--student={tmp_path / "s2"}',
         f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}', '--domain=1']
  r = subprocess.run(cmd + [f'--reference={tmp_path / "ref" / "00000.png"}'], env=env,
                     capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  assert sorted(os.listdir(tmp_path / 'out')) == ['a.png', 'b.png', 'c.png']
  r = subprocess.run(cmd, env=env, capture_output=True, text=True)
  assert r.returncode == 2 and 'needs --domain and one of --reference' in r.stderr
  with pytest.raises(ConfigError, match='--config.init'):
    stargan.train(stage2_config('stage2', steps=1), None, domains=_domains())
  with pytest.raises(ConfigError, match='num_domains'):
    stargan.train(c, None, domains=_domains() + _domains()[:1])


def test_stage1_kill_and_resume_bit_identical(tmp_path):
  teacher = tiny_teacher()
  _, straight = kdit.train(stage1_config(steps=3), str(tmp_path / 'a'), teacher=teacher)
  kdit.train(stage1_config(steps=1), str(tmp_path / 'b'), teacher=teacher)
  _, resumed = kdit.train(stage1_config(steps=3), str(tmp_path / 'b'), teacher=teacher)
  _same(straight.nets, resumed.nets)


@pytest.mark.slow
def test_stage1_ablations_change_the_loss():
  teacher = tiny_teacher()
  metrics = {}
  for ab in ('full', 'kd_star', 'l1_only', 'adv_only'):
    c = stage1_config(ab if ab != 'full' else '', steps=1)
    scfg = stargan.student_config(c.student, RES, latent_dim=teacher.config.z_dim)
    state = kdit.init_state(c, scfg, teacher.config, jax.random.PRNGKey(0))
    g = teacher.nets['G_ema']
    _, m = kdit.make_step(c, scfg, teacher.config)(
        state, (g['params'], g['buffers']), teacher.nets['D']['params'])
    metrics[ab] = {k: float(v) for k, v in m.items()}
  assert metrics['l1_only']['g_kd'] == pytest.approx(metrics['full']['g_kd'])
  assert metrics['kd_star']['g_kd'] != pytest.approx(metrics['full']['g_kd'])


@pytest.mark.slow
def test_stage2_scratch_kill_and_resume_bit_identical(tmp_path):
  d = _domains()
  _, straight = stargan.train(stage2_config(steps=3), str(tmp_path / 'a'), domains=d)
  stargan.train(stage2_config(steps=1), str(tmp_path / 'b'), domains=d)
  _, resumed = stargan.train(stage2_config(steps=3), str(tmp_path / 'b'), domains=d)
  _same(straight.nets, resumed.nets)


def test_domain_batches_are_a_function_of_seed_and_step():
  b = stargan.DomainBatches(_domains(), 4, seed=0, flip=True)
  one, two = b(5), b(5)
  for k in one:
    np.testing.assert_array_equal(one[k], two[k])
  assert not np.array_equal(b(6)['x_real'], one['x_real'])
  ys = np.concatenate([b(s)['y_org'] for s in range(200)])
  assert abs(ys.mean() - 0.5) < 0.06  # domain-balanced


def test_configs_and_errors():
  with pytest.raises(ConfigError, match='unknown KDIT ablation'):
    kdit_anime.get_config('distill,everything')
  with pytest.raises(ConfigError, match='bad argument'):
    kdit_anime.get_config('stage3')
  c = stage2_config(steps=1)
  c.data.domains = 'derived:anime_photo:train10'
  with pytest.raises(ConfigError, match='at least two'):
    stargan.train(c, None)


DP_SCRIPT = r"""
import jax, numpy as np, sys
sys.path.insert(0, 'tests'); sys.path.insert(0, '.')
import test_kdit as k1, test_kdit_spade as k2
from engine_utils import leaves_with_paths
from fsig_jax.distill import kdit, kdit_spade, stargan
from fsig_jax.engine import parallel
assert jax.device_count() == 2, jax.devices()
runs = {
    'kdit stage 1': lambda mesh: kdit.train(k1.stage1_config(steps=1), None,
                                            teacher=k1.tiny_teacher(), mesh=mesh),
    'stargan scratch': lambda mesh: stargan.train(k1.stage2_config(steps=2), None,
                                                  domains=k1._domains(), mesh=mesh),
    'spade stage 1 vector': lambda mesh: kdit_spade.train(k2.cfg('distill,vector'), None,
                                                          teacher=k2.tiny_teacher(), mesh=mesh),
    'spade stage 2 spatial': lambda mesh: kdit_spade.train(k2.cfg('scratch,spatial'), None,
                                                           data=k2._pairs(), mesh=mesh),
}
for name, fn in runs.items():
  out = [leaves_with_paths(fn(parallel.make_mesh(devs))[1].nets)
         for devs in (jax.devices()[:1], jax.devices())]
  d = np.concatenate([np.abs(out[0][k] - out[1][k]).ravel() for k in out[0]])
  print(name, 'max diff', d.max(), 'share > 1e-5', (d > 1e-5).mean())
  # Adam moves a weight by about lr (<= 4e-4 here) per step whatever its gradient's
  # size; a gradient that is 0 in exact arithmetic (a bias before an instance norm) is
  # rounding noise whose sign depends on the reduction order: at most 2 lr per step.
  assert d.max() <= 2 * 2 * 4e-4 + 1e-6 and (d > 1e-5).mean() < 0.05, name
"""


@pytest.mark.slow
def test_two_devices_match_one_device():
  """Every KDIT trainer data-parallel: the triplets / latents made inside the step
  and the real batches sharded over two CPU devices, as on one."""
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
         'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(ROOT)}
  r = subprocess.run([sys.executable, '-c', DP_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=1200)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
  assert r.stdout.count('max diff') == 4, r.stdout
