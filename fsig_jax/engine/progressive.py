"""ProGAN's own pretraining: progressive growing with the WGAN-GP loss.

Karras et al., ICLR 2018, and the official TF code
(tkarras/progressive_growing_of_gans: train.py `TrainingSchedule`, loss.py
`G_wgan_acgan` / `D_wgangp_acgan`, config.py):

* Schedule: start at 4x4; each phase first trains the current resolution for
  `train_kimg` thousand images, then fades the next one in over
  `transition_kimg` (lod = log2(R) - 2 - phase - fade), until the full
  resolution, which then trains on. Reals are shown at the current
  resolution, blended between it and the one below during a fade as the
  official `process_reals` does. Adam's state is reset whenever a fade starts
  or ends (`reset_opt_for_new_lod`).
* Loss: WGAN-GP with lambda 10, target 1, drift 0.001; one D and one G step per
  minibatch; Adam lr 0.001, betas (0, 0.99), eps 1e-8; G_ema with beta 0.999
  per minibatch (`G_smoothing`).

Deviations (for a small CPU budget): one minibatch size at every resolution
(the official code uses larger ones at low resolution) and no minibatch
repeats (official `minibatch_repeats` 4 reuses each batch four times).

The state has the engine's layout (step, key, G/D {'net'}, G_ema, G_buffers,
opt_G/opt_D), so `state_to_bundle` and the exported model are the engine's;
the workdir, checkpoints, logs, grids and export are the shared `fsig_jax.run`
machinery, and the run resumes bit-identically like any other.
"""
import logging
import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from fsig_jax.engine import loop, parallel, run_config
from fsig_jax.engine.batches import Batches
from fsig_jax.engine.state import state_to_bundle
from fsig_jax.errors import ConfigError
from fsig_jax.losses.adversarial import wgan_d, wgan_g
from fsig_jax.losses.regularizers import gradient_penalty
from fsig_jax.models.progan import (ProGANConfig, ProGANDiscriminator, ProGANGenerator,
                                    downscale2d, downscale_to, upscale2d)
from fsig_jax.run import Run, host
from fsig_jax.utils.trees import ema

log = logging.getLogger('fsig_jax')


def progressive_config() -> ml_collections.ConfigDict:
  """Defaults of the official config.py / train.py (ProGAN)."""
  c = ml_collections.ConfigDict()
  c.train_kimg = 600.0        # TrainingSchedule lod_training_kimg
  c.transition_kimg = 600.0   # TrainingSchedule lod_transition_kimg
  c.lr = 0.001                # G_opt / D_opt learning_rate
  c.beta1 = 0.0
  c.beta2 = 0.99
  c.gp_weight = 10.0          # wgan_lambda
  c.drift = 0.001             # wgan_epsilon
  c.ema_beta = 0.999          # G_smoothing
  return c


def stage(images_seen: int, resolution: int, train_kimg: float,
          transition_kimg: float) -> Tuple[int, float]:
  """(current resolution, fade-in alpha of its newest block) after `images_seen`.

  The official lod: phase = floor(kimg / (train + transition)); lod =
  log2(R) - 2 - phase, minus the fade fraction in the transition part.
  """
  kimg = images_seen / 1000.0
  phase_dur = train_kimg + transition_kimg
  if phase_dur <= 0:
    return resolution, 1.0
  phase = math.floor(kimg / phase_dur)
  fade = 0.0
  if transition_kimg > 0:
    fade = min(max(kimg - phase * phase_dur - train_kimg, 0.0) / transition_kimg, 1.0)
  lod = max(int(math.log2(resolution)) - 2 - phase - fade, 0.0)
  floor = math.floor(lod)
  return resolution // 2 ** floor, 1.0 - (lod - floor)


def _adam(pg):
  return optax.adam(pg.lr, b1=pg.beta1, b2=pg.beta2, eps=1e-8)


def init_state(bundle, pg, key) -> dict:
  g = bundle.nets['G']
  d = bundle.require('D')
  as_jnp = lambda t: jax.tree.map(jnp.array, t)  # noqa: E731
  g_side, d_side = as_jnp({'net': g['params']}), as_jnp({'net': d['params']})
  return {'step': jnp.zeros((), jnp.int32), 'key': key, 'G': g_side, 'D': d_side,
          'G_ema': as_jnp(bundle.nets['G_ema']['params']), 'G_buffers': as_jnp(g['buffers']),
          'opt_G': _adam(pg).init(g_side), 'opt_D': _adam(pg).init(d_side), 'method': {}}


def make_step(config, cfg: ProGANConfig, res: int, mesh=None):
  """step(state, real (full resolution), alpha) -> (state, metrics) at `res`, jitted
  by `parallel.jit_step` as every trainer's step is: the compiled program of each
  resolution is kept in the executable cache (a restart loads it without tracing),
  described by the run config, the architecture and the resolution (alpha is an
  argument: a fade and the stable phase after it share one program)."""
  pg = config.progressive
  G, D = ProGANGenerator(cfg), ProGANDiscriminator(cfg)
  opt = _adam(pg)

  def step_fn(state, real, alpha):
    keys = jax.random.split(state['key'], 5)
    real = downscale_to(real, res)
    if res > 4:  # official process_reals: fade the reals with the network
      real = alpha * real + (1 - alpha) * upscale2d(downscale2d(real))
    n = real.shape[0]
    gen = lambda p, z: G.apply({'params': p}, z, resolution=res, alpha=alpha)  # noqa: E731
    dis = lambda p, x: D.apply({'params': p}, x, resolution=res, alpha=alpha)  # noqa: E731

    fake = jax.lax.stop_gradient(gen(state['G']['net'], jax.random.normal(keys[1], (n, cfg.z_dim))))

    def d_loss(d_side):
      real_s, fake_s = dis(d_side['net'], real), dis(d_side['net'], fake)
      gp = gradient_penalty(lambda x: dis(d_side['net'], x), real, fake, keys[2])
      adv = wgan_d(real_s, fake_s, pg.drift)
      return adv + pg.gp_weight * gp, {'d_wgan': adv, 'gp': gp, 'real_score': jnp.mean(real_s),
                                       'fake_score': jnp.mean(fake_s)}

    (_, d_metrics), grads = jax.value_and_grad(d_loss, has_aux=True)(state['D'])
    updates, opt_d = opt.update(grads, state['opt_D'], state['D'])
    d_side = optax.apply_updates(state['D'], updates)

    def g_loss(g_side):
      z = jax.random.normal(keys[3], (n, cfg.z_dim))
      return wgan_g(dis(d_side['net'], gen(g_side['net'], z)))

    g_adv, grads = jax.value_and_grad(g_loss)(state['G'])
    updates, opt_g = opt.update(grads, state['opt_G'], state['G'])
    g_side = optax.apply_updates(state['G'], updates)
    g_ema = ema(state['G_ema'], g_side['net'], pg.ema_beta)
    new = {**state, 'step': state['step'] + 1, 'key': keys[0], 'G': g_side, 'D': d_side,
           'G_ema': g_ema, 'opt_G': opt_g, 'opt_D': opt_d}
    return new, {**d_metrics, 'g_wgan': g_adv, 'alpha': jnp.asarray(alpha, jnp.float32),
                 'resolution': jnp.asarray(res, jnp.float32)}

  return parallel.jit_step(step_fn, mesh, cache_as=('progan_step', {
      'config': config.to_dict(), 'architecture': repr(cfg), 'resolution': res}))


def _reset_optimizers(state, pg):
  return {**state, 'opt_G': _adam(pg).init(state['G']), 'opt_D': _adam(pg).init(state['D'])}


def pretrain(config, workdir: Optional[str] = None, *, bundle=None, images=None, mesh=None):
  """Runs (or resumes) progressive ProGAN training; returns (state, bundle)."""
  bundle, images = loop.prepare(config, bundle, images)
  cfg = bundle.config
  if not isinstance(cfg, ProGANConfig):
    raise ConfigError('config.progressive trains a ProGAN; config.model.checkpoint '
                      f'gives a {type(cfg).__name__} (use e.g. random:progan64)')
  pg, hp = config.progressive, config.hparams
  mesh = mesh or parallel.config_mesh(config)
  parallel.check_batch(hp.batch_size, mesh)
  run = Run(config, workdir, defaults=run_config.default_config(), architecture=cfg)
  state = parallel.replicate(init_state(bundle, pg, jax.random.PRNGKey(config.seed)), mesh)
  state = run.restore(state)
  batches = Batches(images, hp.batch_size, seed=config.seed, flip=config.data.flip, mesh=mesh)
  z_fixed = jax.random.normal(jax.random.PRNGKey(config.seed + 1),
                              (config.num_samples, cfg.z_dim))
  start = run.start(state)
  log.info('%s: ProGAN progressive pretraining on %d images at %dpx, steps %d..%d',
           bundle.source, len(images), cfg.resolution, start, config.steps)
  steps_fns = {}

  def at(step):
    res, alpha = stage(step * hp.batch_size, cfg.resolution, pg.train_kimg, pg.transition_kimg)
    return res, alpha, (res, alpha < 1.0)

  step = start
  while step < config.steps:
    res, alpha, phase = at(step)
    if step > 0 and at(step - 1)[2] != phase:  # a fade starts or ends: fresh Adam state
      # replicated again: jit_step takes its inputs as they are placed
      state = parallel.replicate(_reset_optimizers(state, pg), mesh)
      log.info('step %d: now at %dpx (%s); optimiser state reset', step, res,
               'fading in' if alpha < 1 else 'stable')
    if res not in steps_fns:
      steps_fns[res] = make_step(config, cfg, res, mesh)
    real, _ = batches(step)
    new_state, metrics = steps_fns[res](state, real,
                                        parallel.replicate(np.float32(alpha), mesh))
    state, step = new_state, step + 1
    run.step_done(step, metrics, state)
    if run.sample_due(step):
      g = host(state['G_ema'])
      imgs = ProGANGenerator(cfg).apply({'params': g}, z_fixed, resolution=res, alpha=alpha)
      while imgs.shape[1] < cfg.resolution:
        imgs = upscale2d(imgs)
      run.grid(step, np.asarray(imgs), note=f'{res}px, alpha {alpha:.2f}')

  model = state_to_bundle(host(state), bundle,
                          source=f'progan pretrained on {config.data.source}')
  run.export(model, {'steps': step, 'method': 'progan-progressive', 'source': bundle.source})
  return state, model
