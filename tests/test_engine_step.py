"""The adaptation step: losses against hand computations, determinism, masks."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from engine_utils import TINY, leaves_with_paths, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.losses.adversarial import d_logistic, g_nonsaturating
from fsig_jax.losses.regularizers import gradient_penalty, path_length_penalty, r1_penalty
from fsig_jax.methods import get_method
from fsig_jax.methods.freezed import default_freeze_layers, layer_index


def softplus(x):
  return np.log1p(np.exp(x))


def test_logistic_losses_by_hand():
  real, fake = np.array([[0.5], [-1.0]]), np.array([[2.0], [0.1]])
  want_d = softplus(fake).mean() + softplus(-real).mean()
  np.testing.assert_allclose(d_logistic(jnp.array(real), jnp.array(fake)), want_d, rtol=1e-6)
  np.testing.assert_allclose(g_nonsaturating(jnp.array(fake)), softplus(-fake).mean(), rtol=1e-6)


def test_r1_of_a_linear_discriminator():
  a = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3) / 10
  d = lambda x: jnp.sum(x * a, axis=(1, 2, 3))[:, None]  # noqa: E731
  x = jnp.ones((3, 2, 2, 3))
  np.testing.assert_allclose(r1_penalty(d, x), np.sum(a ** 2), rtol=1e-6)


def test_wgan_gp_by_hand():
  """ProGAN's gradient penalty against a hand computation: a quadratic critic
  D(x) = 0.5 sum x^2 has gradient x at the interpolate real + t (fake - real)."""
  rng = np.random.default_rng(1)
  real = rng.normal(size=(4, 2, 2, 3)).astype(np.float32)
  fake = rng.normal(size=(4, 2, 2, 3)).astype(np.float32)
  key = jax.random.PRNGKey(7)
  t = np.asarray(jax.random.uniform(key, (4, 1, 1, 1)))
  mixed = real + (fake - real) * t
  norms = np.sqrt(np.sum(mixed.astype(np.float64) ** 2, axis=(1, 2, 3)))
  for target in (1.0, 2.0):
    want = np.mean((norms - target) ** 2) / target ** 2
    got = gradient_penalty(lambda x: 0.5 * jnp.sum(x * x, axis=(1, 2, 3)), jnp.asarray(real),
                           jnp.asarray(fake), key, target)
    np.testing.assert_allclose(got, want, rtol=1e-5)
  # ...and a linear critic's penalty is (|a| - 1)^2 whatever the samples.
  a = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3) / 10
  got = gradient_penalty(lambda x: jnp.sum(x * a, axis=(1, 2, 3)), jnp.asarray(real),
                         jnp.asarray(fake), key)
  np.testing.assert_allclose(got, (np.sqrt(np.sum(a ** 2)) - 1) ** 2, rtol=1e-5)


def test_path_length_of_a_linear_generator():
  rng = np.random.default_rng(0)
  m = rng.normal(size=(2 * 4, 2 * 2 * 3)).astype(np.float32)  # (num_ws*w_dim, H*W*C)
  synth = lambda ws: (ws.reshape(ws.shape[0], -1) @ m).reshape(-1, 2, 2, 3)  # noqa: E731
  ws = jnp.asarray(rng.normal(size=(5, 2, 4)).astype(np.float32))
  key = jax.random.PRNGKey(0)
  pen, new_mean, mean_len = path_length_penalty(synth, ws, key, jnp.array(0.5), decay=0.01)
  y = np.asarray(jax.random.normal(key, (5, 2, 2, 3))) / 2.0  # / sqrt(H*W)
  g = (y.reshape(5, -1) @ m.T).reshape(5, 2, 4)
  lengths = np.sqrt((g ** 2).sum(2).mean(1))
  want_mean = 0.5 + 0.01 * (lengths.mean() - 0.5)
  np.testing.assert_allclose(mean_len, lengths.mean(), rtol=1e-5)
  np.testing.assert_allclose(new_mean, want_mean, rtol=1e-5)
  np.testing.assert_allclose(pen, ((lengths - want_mean) ** 2).mean(), rtol=1e-4)


def run(method_names, steps=3, seed=1, **method_kw):
  bundle = tiny_bundle()
  hp = tiny_hparams()
  method = get_method(method_names, **method_kw)
  state = init_state(bundle, hp, method, jax.random.PRNGKey(seed))
  init = leaves_with_paths(state)
  step = make_train_step(TINY, hp, method)
  images = jnp.asarray(tiny_images(hp.batch_size))
  metrics = []
  for _ in range(steps):
    state, m = step(state, images)
    metrics.append({k: float(v) for k, v in m.items()})
  return init, leaves_with_paths(state), metrics


@pytest.fixture(scope='module')
def tgan_runs():
  return run(['tgan']), run(['tgan'])


def test_step_trains_and_logs_every_term(tgan_runs):
  (init, final, metrics), _ = tgan_runs
  assert final["['step']"] == 3
  assert set(metrics[0]) >= {'d_adv', 'g_adv', 'r1', 'pl', 'pl_mean', 'real_score', 'fake_score'}
  assert all(np.isfinite(v) for m in metrics for v in m.values())
  assert metrics[0]['r1'] > 0 and metrics[1]['r1'] == 0 and metrics[2]['r1'] > 0  # lazy every 2
  changed = [k for k in init if k.startswith("['G']") and not np.array_equal(init[k], final[k])]
  assert len(changed) > 0.9 * sum(k.startswith("['G']") for k in init)
  # The source generator is frozen; the EMA moved towards G.
  src = [k for k in init if k.startswith("['source_G']")]
  assert all(np.array_equal(init[k], final[k]) for k in src)
  assert not np.array_equal(init["['G_ema']['synthesis']['b8']['conv0']['kernel']"],
                            final["['G_ema']['synthesis']['b8']['conv0']['kernel']"])


def test_same_seed_is_bit_identical(tgan_runs):
  (_, a, ma), (_, b, mb) = tgan_runs
  assert ma == mb
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_freezed_layers_never_change():
  n = 5  # b16: fromrgb conv0 conv1 skip, b8: conv0
  init, final, _ = run(['freezed'], steps=3, freezed={'freeze_layers': n})
  index = layer_index(16)
  for k in init:
    if not k.startswith("['D']['net']"):
      continue
    parts = [p.strip("'") for p in k.strip('[]').split('][')]
    layer = index.get((parts[2], parts[3]))
    if layer is not None and layer < n:
      np.testing.assert_array_equal(init[k], final[k], err_msg=f'{k} is frozen but changed')
    else:
      assert not np.array_equal(init[k], final[k]), f'{k} should train'


def test_freezed_default_and_range():
  assert default_freeze_layers(16) == 0
  assert default_freeze_layers(64) == 4 + 3  # b64 (with fromrgb) and b32
  with pytest.raises(ValueError, match='freeze_layers must be in'):
    init_state(tiny_bundle(), tiny_hparams(), get_method('freezed', freezed={'freeze_layers': 99}),
               jax.random.PRNGKey(0))


def test_unknown_method_is_named():
  with pytest.raises(ValueError, match=r"unknown method\(s\) \['cdcc'\]; available"):
    get_method(['cdcc'])


# One device with XLA's native convolutions vs 8 devices with the im2col path
# and with hybrid (the CPU default; the test run otherwise uses native convs, see
# conftest.py): the equivalences in one set of compiles, each also checked alone
# elsewhere.
DP_SCRIPT = r'''
import jax, jax.numpy as jnp, numpy as np, os, sys
sys.path.insert(0, 'tests')
from engine_utils import TINY, leaves_with_paths, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax.engine import parallel
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import get_method
assert jax.device_count() == 8, jax.devices()
hp = tiny_hparams(batch_size=8)
method = get_method('tgan')
images = tiny_images(8)
out = []
for mesh, conv in ((None, 'native'), (parallel.make_mesh(), 'im2col'),
                   (parallel.make_mesh(), 'hybrid')):
  os.environ['FSIG_CONV_IMPL'] = conv  # read when the step is traced
  state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(1))
  step = make_train_step(TINY, hp, method, mesh=mesh)
  if mesh is not None:
    state = parallel.replicate(state, mesh)
    batch = parallel.global_batch(images, mesh)
    assert len(batch.sharding.device_set) == 8
  else:
    batch = jnp.asarray(images)
  for _ in range(3):
    state, m = step(state, batch)
  out.append(leaves_with_paths(state))
worst = max(float(np.max(np.abs(out[0][k] - o[k]))) for o in out[1:] for k in out[0]
            if out[0][k].dtype.kind == 'f')
print('max diff', worst)
assert worst < 1e-4, worst
'''


# CDC with CDC's adaptive ADA (configs/paper_ffhq256.py:cdc): the sign statistic is
# summed over the global batch, so p and every parameter agree on 1 and 8 devices; the
# accumulator starts near 256 predictions so that p rises at step 1 and steps 2-3
# augment at p > 0.
ADA_DP_SCRIPT = r'''
import jax, jax.numpy as jnp, numpy as np, sys
sys.path.insert(0, 'tests')
from engine_utils import TINY, leaves_with_paths, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax.engine import parallel
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import get_method
assert jax.device_count() == 8, jax.devices()
hp = tiny_hparams(batch_size=8, augment='ada', augment_p=0.0, ada_length=1000)
method = get_method('cdc', cdc=dict(subspace_freq=2))
out = []
for mesh in (None, parallel.make_mesh()):
  state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(1))
  state['ada'] = {**state['ada'], 'signs': jnp.float32(1e4), 'n': jnp.float32(248)}
  step = make_train_step(TINY, hp, method, mesh=mesh)
  batch = jnp.asarray(tiny_images(8))
  if mesh is not None:
    state, batch = parallel.replicate(state, mesh), parallel.global_batch(tiny_images(8), mesh)
  for _ in range(3):
    state, m = step(state, batch)
  out.append(leaves_with_paths(state))
assert out[0]["['ada']['p']"] > 0 and out[0]["['ada']['n']"] == 16
worst = max(float(np.max(np.abs(out[0][k] - out[1][k]))) for k in out[0] if out[0][k].dtype.kind == 'f')
print('max diff', worst)
assert worst < 1e-4, worst
'''


@pytest.mark.slow
@pytest.mark.parametrize('script', [DP_SCRIPT, ADA_DP_SCRIPT], ids=['tgan', 'cdc_ada'])
def test_eight_devices_match_one_device(script):
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=8',
         'JAX_PLATFORMS': 'cpu'}
  r = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
  assert 'max diff' in r.stdout
