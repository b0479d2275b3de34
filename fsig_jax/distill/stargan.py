"""StarGAN v2 training on limited real data (KDIT stage 2, and the from-scratch baseline).

StarGAN v2 (Choi et al., CVPR 2020) as its official solver trains it
(clovaai/stargan-v2 core/solver.py `Solver.train`, `compute_d_loss`,
`compute_g_loss`), on the real images of each domain:

  per iteration: D on a latent-guided fake, D on a reference-guided fake, G
  (with the mapping network and style encoder) on latent-guided fakes, G alone
  on reference-guided fakes, then EMA (beta 0.999) of G, mapping and style
  encoder, and the diversity weight decays linearly to 0 over ds_iter.
  D loss: BCE(D(x, y_org), 1) + BCE(D(fake, y_trg), 0) + lambda_reg * R1 on reals
  G loss: BCE(D(fake), 1) + lambda_sty |E(fake) - s| - lambda_ds |fake - fake2|
          + lambda_cyc |G(fake, E(x, y_org)) - x|
  Adam lr 1e-4 (mapping network 1e-6), betas (0, 0.99), weight decay 1e-4
  (torch Adam's L2 form: added to the gradient); lambda_reg = lambda_cyc =
  lambda_sty = lambda_ds = 1; batch 8 (main.py defaults).

Batches follow the official loaders: source images domain-balanced (each
sample's domain uniform, then an image of it), references: a random target
domain and two images of it; horizontal flips. All from (seed, step). The
official random resized crop (p 0.5) is left out (64 px faces; a deviation).

KDIT stage 2 (`config.init`: a KDIT stage-1 workdir or model): the distilled
networks initialise G, the mapping network, the style encoder and D, and the
domain-specific heads of the mapping network, style encoder and D are all
copies of the distilled head 0 (the teacher's domain). From scratch (stage 0)
every network starts from the official He initialisation
(models/students/stargan_v2.py).

This module also holds what both KDIT stages share: the student's config
defaults, the networks, the optimisers, the adversarial terms and the export
(translation is the exported student's own, models/students/student.py).
"""
import logging
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from fsig_jax.convert.load import load_model_dir
from fsig_jax.engine import parallel
from fsig_jax.data.images import load_images
from fsig_jax.data import targets
from fsig_jax.errors import ConfigError, DataError
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.students import stargan_v2 as nets_lib
from fsig_jax.models.students.student import StarGANStudent
from fsig_jax.run import Run, host, run_fields
from fsig_jax.utils.trees import ema

log = logging.getLogger('fsig_jax')

EMA_NETS = ('G', 'mapping', 'style')
NETS = ('G', 'mapping', 'style', 'D')


# ----------------------------------------------------------------------------- shared pieces


def student_defaults() -> ml_collections.ConfigDict:
  """StarGAN v2 architecture fields (models/students/stargan_v2.py), resolution from the data."""
  d = {k: v for k, v in vars(nets_lib.StarGANv2Config()).items()
       if k not in ('arch', 'resolution')}
  return ml_collections.ConfigDict(d)


def student_config(options, resolution: int, latent_dim: Optional[int] = None):
  d = dict(options.to_dict() if hasattr(options, 'to_dict') else options)
  d['resolution'] = resolution
  if latent_dim is not None:
    d['latent_dim'] = latent_dim
  try:
    return nets_lib.StarGANv2Config.from_dict(d)
  except (TypeError, ValueError) as e:
    raise ConfigError(f'student: {e}') from None


def optimizer_defaults() -> ml_collections.ConfigDict:
  hp = ml_collections.ConfigDict()
  hp.batch_size = 8        # main.py --batch_size
  hp.lr = 1e-4             # --lr
  hp.f_lr = 1e-6           # --f_lr (mapping network)
  hp.beta1 = 0.0           # --beta1
  hp.beta2 = 0.99          # --beta2
  hp.weight_decay = 1e-4   # --weight_decay (torch Adam: L2 added to the gradient)
  hp.ema_beta = 0.999      # moving_average(beta=0.999)
  return hp


def optimizers(hp, names: Sequence[str]) -> dict:
  """{net: optax transform}: Adam with L2 weight decay, the mapping network at f_lr."""
  def adam(lr):
    return optax.chain(optax.add_decayed_weights(hp.weight_decay),
                       optax.adam(lr, b1=hp.beta1, b2=hp.beta2, eps=1e-8))
  return {n: adam(hp.f_lr if n == 'mapping' else hp.lr) for n in names}


networks = nets_lib.networks          # {'G', 'mapping', 'style', 'D'}: the Flax modules
init_params = nets_lib.init_stargan   # their fresh params (official he_init)


def bce(logits, target: float):
  """F.binary_cross_entropy_with_logits against a constant target (official adv_loss)."""
  return jnp.mean(jnp.maximum(logits, 0) - logits * target + jnp.log1p(jnp.exp(-jnp.abs(logits))))


def r1(D, params, x, y):
  """Official r1_reg: 0.5 * mean over the batch of the summed squared gradient of
  sum D(x) with respect to the real images."""
  g = jax.grad(lambda im: jnp.sum(D.apply({'params': params}, im, y)))(x)
  return 0.5 * jnp.mean(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1))


def d_adversarial(D, params, real, y_real, fakes, y_fake, r1_weight: float):
  """BCE(D(real), 1) + r1_weight * R1 + mean over `fakes` of BCE(D(fake), 0) -> (loss, metrics).
  With one fake this is the official compute_d_loss."""
  real_logits = D.apply({'params': params}, real, y_real)
  loss_real = bce(real_logits, 1.0)
  reg = r1(D, params, real, y_real) if r1_weight else jnp.zeros(())
  loss_fake = sum(bce(D.apply({'params': params}, f, y_fake), 0.0) for f in fakes) / len(fakes)
  return loss_real + loss_fake + r1_weight * reg, {'real': loss_real, 'fake': loss_fake,
                                                   'reg': reg}


def student_bundle(scfg, nets: dict, ema_nets: dict, source: str) -> ModelBundle:
  """The exported StarGAN v2: trained nets plus the EMA G / mapping / style for inference."""
  out = {n: {'params': nets[n]} for n in NETS}
  out.update({f'{n}_ema': {'params': ema_nets[n]} for n in EMA_NETS})
  return ModelBundle(config=scfg, nets=out, source=source)


def sample_student(scfg, state) -> StarGANStudent:
  """The run's EMA networks as the exported student callable (for sample grids)."""
  return StarGANStudent(student_bundle(scfg, host(state['nets']), host(state['ema']), 'sample'))


# ----------------------------------------------------------------------------- stage 2


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.trainer = 'stargan_v2'
  c.stage = 0                     # 0: from scratch; 2: KDIT stage 2 (needs `init`)
  c.init = ''                     # stage 2: a KDIT stage-1 workdir / model dir
  c.data = ml_collections.ConfigDict()
  c.data.domains = ''             # comma-separated sources, one per domain (domain k = k-th)
  c.data.resolution = 64          # from scratch; with `init`, the student's
  c.data.flip = True
  c.student = student_defaults()  # from scratch; with `init`, the distilled student's
  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_reg = 1.0         # main.py defaults
  c.loss.lambda_cyc = 1.0
  c.loss.lambda_sty = 1.0
  c.loss.lambda_ds = 1.0
  c.loss.ds_iter = 100000
  c.hparams = optimizer_defaults()
  run_fields(c, steps=100000)  # --total_iters
  return c


def load_domains(config, resolution: int):
  srcs = [s.strip() for s in str(config.data.domains).split(',') if s.strip()]
  if len(srcs) < 2:
    raise ConfigError('data.domains needs at least two comma-separated image sources (one '
                      'per domain), e.g. derived:anime_photo:train100,'
                      'derived:anime_sketch:train100+157')
  out = []
  for src in srcs:
    try:
      imgs = targets.load_derived(src, resolution) if targets.is_derived(src) else src
      out.append(load_images(imgs, resolution))
    except DataError as e:
      raise ConfigError(f'data.domains: {src}: {e}') from None
  return out


def load_init(path: str) -> ModelBundle:
  return load_model_dir(path, arch='stargan_v2', setting='init',
                        what='a KDIT stage-1 workdir (or its model/)')


def stage2_init(bundle: ModelBundle) -> dict:
  """The distilled nets with every domain head a copy of head 0 (KDIT stage 2)."""
  nets = {n: bundle.nets[n]['params'] for n in NETS}
  return {n: nets_lib.init_heads_from(p, 0) if n != 'G' else p for n, p in nets.items()}


class DomainBatches:
  """Per step (pure function of (seed, step)): x_real, y_org (domain-balanced),
  x_ref, x_ref2 from a random target domain y_trg, with flips."""

  def __init__(self, domains, batch_size: int, seed: int, flip: bool):
    self.domains, self.batch, self.seed, self.flip = domains, batch_size, seed, flip

  def _take(self, rng, doms):
    out = np.stack([self.domains[d][rng.integers(len(self.domains[d]))] for d in doms])
    if self.flip:
      f = rng.random(len(doms)) < 0.5
      out[f] = out[f][:, :, ::-1]
    return out

  def __call__(self, step: int):
    rng = np.random.default_rng([int(self.seed), int(step)])
    nd = len(self.domains)
    y_org = rng.integers(nd, size=self.batch)
    y_trg = rng.integers(nd, size=self.batch)
    return {'x_real': self._take(rng, y_org), 'y_org': y_org.astype(np.int32),
            'x_ref': self._take(rng, y_trg), 'x_ref2': self._take(rng, y_trg),
            'y_trg': y_trg.astype(np.int32)}


def make_step(config, scfg, mesh=None):
  """The official iteration (module docstring) as one jitted function."""
  L, hp = config.loss, config.hparams
  n = networks(scfg)
  opts = optimizers(hp, NETS)

  def apply_opt(name, grads, nets, opt):
    upd, o = opts[name].update(grads, opt[name], nets[name])
    return dict(nets, **{name: optax.apply_updates(nets[name], upd)}), dict(opt, **{name: o})

  def style_of(q, which, src, y):
    """s_trg from a latent (mapping network) or a reference image (style encoder)."""
    if which == 'latent':
      return n['mapping'].apply({'params': q['mapping']}, src, y)
    return n['style'].apply({'params': q['style']}, src, y)

  def step_fn(state, b):
    key, kz1, kz2 = jax.random.split(state['key'], 3)
    z1, z2 = parallel.constrain_batch(
        (jax.random.normal(kz1, (b['x_real'].shape[0], scfg.latent_dim)),
         jax.random.normal(kz2, (b['x_real'].shape[0], scfg.latent_dim))), mesh)
    nets, opt = state['nets'], state['opt']
    lambda_ds = L.lambda_ds * jnp.maximum(0.0, 1.0 - state['step'] / L.ds_iter)
    metrics = {'lambda_ds': lambda_ds}
    srcs = {'latent': (z1, z2), 'ref': (b['x_ref'], b['x_ref2'])}
    for which in ('latent', 'ref'):  # D: on a latent-guided fake, then a reference-guided one
      s = jax.lax.stop_gradient(style_of(nets, which, srcs[which][0], b['y_trg']))
      fake = jax.lax.stop_gradient(n['G'].apply({'params': nets['G']}, b['x_real'], s))
      (_, m), g = jax.value_and_grad(
          lambda dp: d_adversarial(n['D'], dp, b['x_real'], b['y_org'], [fake], b['y_trg'],
                                   L.lambda_reg), has_aux=True)(nets['D'])
      nets, opt = apply_opt('D', g, nets, opt)
      metrics.update({f'D/{which}_{k}': v for k, v in m.items()})

    def g_loss(q, which):
      s = style_of(q, which, srcs[which][0], b['y_trg'])
      s2 = style_of(q, which, srcs[which][1], b['y_trg'])
      fake = n['G'].apply({'params': q['G']}, b['x_real'], s)
      adv = bce(n['D'].apply({'params': q['D']}, fake, b['y_trg']), 1.0)
      sty = jnp.mean(jnp.abs(n['style'].apply({'params': q['style']}, fake, b['y_trg']) - s))
      fake2 = jax.lax.stop_gradient(n['G'].apply({'params': q['G']}, b['x_real'], s2))
      ds = jnp.mean(jnp.abs(fake - fake2))
      s_org = n['style'].apply({'params': q['style']}, b['x_real'], b['y_org'])
      cyc = jnp.mean(jnp.abs(n['G'].apply({'params': q['G']}, fake, s_org) - b['x_real']))
      loss = adv + L.lambda_sty * sty - lambda_ds * ds + L.lambda_cyc * cyc
      return loss, {'adv': adv, 'sty': sty, 'ds': ds, 'cyc': cyc}

    # G latent: G, mapping and style encoder step; G reference: G alone.
    for which, trained in (('latent', ('G', 'mapping', 'style')), ('ref', ('G',))):
      (_, m), g = jax.value_and_grad(lambda q: g_loss(q, which), has_aux=True)(nets)
      for name in trained:
        nets, opt = apply_opt(name, g[name], nets, opt)
      metrics.update({f'G/{which}_{k}': v for k, v in m.items()})
    new_ema = {k: ema(state['ema'][k], nets[k], hp.ema_beta) for k in EMA_NETS}
    return {**state, 'step': state['step'] + 1, 'key': key, 'nets': nets, 'opt': opt,
            'ema': new_ema}, metrics
  return parallel.jit_step(step_fn, mesh, cache_as=('stargan_step', {
      'config': config.to_dict(), 'student': scfg}))


def init_state(config, scfg, key, init: Optional[ModelBundle] = None) -> dict:
  k_net, key = jax.random.split(key)
  nets = stage2_init(init) if init is not None else init_params(scfg, k_net)
  nets = jax.tree.map(jnp.asarray, nets)
  opts = optimizers(config.hparams, NETS)
  return {'step': jnp.zeros((), jnp.int32), 'key': key, 'nets': nets,
          'opt': {k: opts[k].init(nets[k]) for k in NETS},
          'ema': jax.tree.map(jnp.copy, {k: nets[k] for k in EMA_NETS})}  # own buffers


def train(config, workdir: Optional[str] = None, *, init: Optional[ModelBundle] = None,
          domains=None, mesh=None):
  """Runs (or resumes) StarGAN v2 training; returns (state, student bundle).

  `init` (or config.init) makes it KDIT stage 2; `domains` passes the images
  per domain directly (a list of arrays).
  """
  if config.stage not in (0, 2):
    raise ConfigError(f'stage {config.stage}: 0 (from scratch) or 2 (KDIT stage 2)')
  if config.stage == 0 and (init is not None or config.init):
    raise ConfigError('init is set but stage is 0 (from scratch): set stage=2 for KDIT '
                      "stage 2, or init='' to train from scratch")
  if config.stage == 2 and init is None:
    if not config.init:
      raise ConfigError('KDIT stage 2 starts from the stage-1 student: pass '
                        '--config.init=STAGE1_WORKDIR (launch/main.py --config=...:distill)')
    init = load_init(config.init)
  if init is not None:
    scfg = init.config
  else:
    scfg = student_config(config.student, config.data.resolution)
  domains = domains if domains is not None else load_domains(config, scfg.resolution)
  if len(domains) != scfg.num_domains:
    raise ConfigError(f'{len(domains)} domains in data.domains but the student has '
                      f'num_domains={scfg.num_domains}; set student.num_domains (stage 1: '
                      'the KDIT config) to the number of domains')
  mesh = mesh or parallel.config_mesh(config)
  parallel.check_batch(config.hparams.batch_size, mesh)
  run = Run(config, workdir, defaults=default_config(), architecture=scfg)
  state = run.restore(parallel.replicate(
      init_state(config, scfg, jax.random.PRNGKey(config.seed), init), mesh))
  batches = DomainBatches(domains, config.hparams.batch_size, config.seed, config.data.flip)
  step_fn = make_step(config, scfg, mesh)
  k = config.num_samples
  pick = lambda d, j: domains[d % len(domains)][j % len(domains[d % len(domains)])]  # noqa: E731
  grid_x = np.stack([pick(i, i // len(domains)) for i in range(k)])  # alternating domains
  grid_ref = np.stack([pick(i + 1, -1 - i // len(domains)) for i in range(k)])
  start = run.start(state)
  log.info('StarGAN v2 (%s) at %dpx on %d domains (%s images), steps %d..%d',
           'KDIT stage 2' if init is not None else 'from scratch', scfg.resolution,
           len(domains), '/'.join(str(len(d)) for d in domains), start, config.steps)
  step = start
  while step < config.steps:
    b = parallel.shard_batches(batches(step), mesh)
    state, metrics = step_fn(state, b)
    step += 1
    run.step_done(step, metrics, state)
    if run.sample_due(step):
      student = sample_student(scfg, state)
      rows = [grid_x, grid_ref]
      for d in range(len(domains)):
        rows.append(student(grid_x, d, reference=grid_ref))
      run.grid(step, np.concatenate(rows), k,
               'rows: input, reference, reference-guided output into domain 0, 1, ...')
  model = student_bundle(scfg, host(state['nets']), host(state['ema']),
                         source=('kdit stage 2' if init is not None else 'stargan_v2') +
                         f' on {config.data.domains}')
  run.export(model, {'trainer': 'stargan_v2', 'stage': config.stage,
                     'steps': step, 'init': config.init})
  return state, model
