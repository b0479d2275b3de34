"""KDIT stage 1: data-free distillation of a StyleGAN2 teacher into a StarGAN v2
student with style-mixed triplets.

"Distilling GANs with Style-Mixed Triplets for X2I Translation with Limited
Data" (KDIT, ICLR 2022). Its promised repository holds only a README, so every
open detail below is a decision, stated here and exposed as a config field.
Stage 2 (StarGAN v2's own recipe on the limited real data, initialised from
this stage's networks) is `fsig_jax.distill.stargan`.

Style-mixed triplets (Sec. 3.1), drawn online every step from (seed, step):
s1 = M(z1), s2 = M(z2) through the frozen teacher's mapping network;
x1 = G'(s1) (the input), x2 = G'(s2) (the reference) and y = G'(Phi(s1, s2))
with s1 in the first `inject_index` = 4 style inputs and s2 in the rest. One
noise draw per triplet, shared by x1, x2 and y, so that x1 and y have identical
features up to 8x8 (tested). The paper's teacher is a StyleGAN v1 (its first
feature 8x8x512); ours is the library's StyleGAN2, whose first four style
inputs drive the 4x4 and 8x8 layers (ws 0-3; rosinality's indexing), so Phi
with inject_index 4 mixes at the same scale. Truncation 1 by default.

Losses (Eqs. 1-5), every L1 a mean over elements:
  L_kd = gamma * sum_l |P(E_c^l(x1)) - D'^l(x1)|        content encoder vs teacher D
       + tau   * sum_l |P(E_s^l(x2)) - D'^l(x2)|        style encoder vs teacher D
       + alpha * sum_l |P(G_dec^l) - G'^l(y)|           student decoder vs teacher G
       + beta  * |G(x1, s) - y|                         the output
  L_G  = lambda_adv * L_adv + lambda_kdl * L_kd,   gamma = tau = alpha = beta = 0.1,
                                                  lambda_adv = lambda_kdl = 1.
Levels are paired by spatial size: student feature maps of the same size as a
teacher map (teacher D: the output of its block `b{r}`, size r/2, and its
4x4 `b4.conv`; teacher G: `b{r}.conv1`, size r). Widths differ, so each
student map passes a trainable 1x1 projection to the teacher's width on the
student side (FitNets). The paper's text puts the projections on the teacher
side; a trainable projection there lets both sides of the L1 shrink toward
zero, so we do not. The student's style code comes from both of StarGAN v2's
paths each step: latent-guided s = M_s(z2) (the mapping network takes the
teacher's z2, the latent of the reference, so the L1 to y is well posed: the
student's latent_dim is the teacher's z_dim) and reference-guided s = E_s(x2);
the decoder and output terms and the adversarial loss are the mean over the
two paths, and D takes one step on both fakes (the mean of StarGAN v2's two D
losses; official StarGAN v2 alternates separate updates).
Stage 1 trains domain head 0 (the teacher's domain); stage 2 copies it into
every head.

Adversarial loss: StarGAN v2's (non-saturating BCE with logits; D's R1 on the
real images with weight `kdit.r1` = 1, its default) with y as the real data
and the student's outputs as the fakes, judged by the student's own
StarGAN v2 discriminator (head 0).

Ablations (the paper's): KD* (`kdit.triplets = False`): no triplets, x2 and y
replaced by x1 (and z2 by z1); L1 only: lambda_adv = 0; adversarial only:
lambda_kdl = 0.

Optimisation: batch 2, 20k iterations, Adam betas (0, 0.99) (paper); lr 1e-4
and weight decay 1e-4 as StarGAN v2's solver (torch Adam's L2 form), the
same lr for the mapping network (StarGAN v2's f_lr = 1e-6 would leave the
distilled mapping network near its initialisation; a field). EMA copies of
G, the mapping network and the style encoder with beta 0.999 (StarGAN v2).

State (a plain dict, checkpointed by the shared run machinery): step, key, the
params and Adam states of G, mapping, style encoder, D and the projections,
and the EMA networks. The teacher is a frozen input of the step.
"""
import logging
from typing import Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from fsig_jax.convert.load import load_model
from fsig_jax.distill import stargan as sg
from fsig_jax.engine import parallel
from fsig_jax.errors import ConfigError
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.functional import Models
from fsig_jax.run import Run, host, run_fields
from fsig_jax.utils.trees import ema

log = logging.getLogger('fsig_jax')

TRAINABLE = ('G', 'mapping', 'style', 'proj')


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.trainer = 'kdit'
  c.teacher = ml_collections.ConfigDict()
  c.teacher.checkpoint = ''       # the StyleGAN2 teacher (.pt / .pkl / fsig-jax dir; needs D)
  c.teacher.inject_index = 4      # Phi: s1 drives the first 4 style inputs (4x4 and 8x8)
  c.teacher.truncation = 1.0
  c.student = sg.student_defaults()  # StarGAN v2 widths; latent_dim = the teacher's z_dim
  c.kdit = ml_collections.ConfigDict()
  c.kdit.gamma = 0.1              # content encoder vs teacher D, per level (Eq. 2)
  c.kdit.tau = 0.1                # style encoder vs teacher D, per level (Eq. 3)
  c.kdit.alpha = 0.1              # student decoder vs teacher G, per level (Eq. 4)
  c.kdit.beta = 0.1               # output vs y (Eq. 4)
  c.kdit.lambda_adv = 1.0         # Eq. 5
  c.kdit.lambda_kdl = 1.0
  c.kdit.r1 = 1.0                 # StarGAN v2 --lambda_reg
  c.kdit.triplets = True          # False: KD* (x2 = y = x1)
  c.hparams = sg.optimizer_defaults()
  c.hparams.batch_size = 2        # paper
  c.hparams.f_lr = 1e-4           # the mapping network's lr (module docstring)
  run_fields(c, steps=20000)  # paper
  return c


# ----------------------------------------------------------------------------- triplets


def make_triplets(teacher_cfg, batch: int, inject_index: int, truncation: float,
                  triplets: bool = True):
  """triplets(teacher, key) -> dict of x1, x2, y (images), z1, z2 and the teacher
  G features of y by size; one noise draw shared by x1, x2 and y. `teacher` is
  (G_ema params, buffers). KD*: x2 = y = x1, z2 = z1."""
  models = Models(teacher_cfg)
  n = teacher_cfg.num_ws
  if not 0 < inject_index < n:
    raise ConfigError(f'teacher.inject_index must be in [1, {n - 1}] for this teacher '
                      f'({n} style inputs), got {inject_index}')

  def fn(teacher, key):
    params, buffers = teacher
    k1, k2, kn = jax.random.split(key, 3)
    z1 = jax.random.normal(k1, (batch, teacher_cfg.z_dim))
    z2 = jax.random.normal(k2, (batch, teacher_cfg.z_dim)) if triplets else z1
    w1, w2 = models.map(params, buffers, z1), models.map(params, buffers, z2)
    if truncation != 1:
      w_avg = buffers['w_avg']
      w1, w2 = (w_avg + truncation * (w - w_avg) for w in (w1, w2))
    ws_y = phi(w1, w2, n, inject_index)
    synth = lambda ws: models.synth(params, buffers, ws, kn, return_features=True)  # noqa: E731
    x1, f1 = synth(models.broadcast(w1))
    x2, _ = synth(models.broadcast(w2))
    y, fy = (x1, f1) if not triplets else synth(ws_y)
    clip = lambda im: jnp.clip(im, -1.0, 1.0)  # noqa: E731
    return {'x1': clip(x1), 'x2': clip(x2), 'y': clip(y), 'z1': z1, 'z2': z2,
            'x1_feats': f1, 'y_feats': fy}
  return fn


def phi(w1, w2, num_ws: int, inject_index: int):
  """Phi(s1, s2): per-layer styles (N, num_ws, w_dim), w1 in the first inject_index."""
  sel = (jnp.arange(num_ws) < inject_index)[None, :, None]
  return jnp.where(sel, w1[:, None], w2[:, None])


def teacher_g_levels(feats: Dict[str, jax.Array]) -> Dict[int, jax.Array]:
  """Teacher G block outputs by spatial size: {r: b{r}.conv1}."""
  return {int(k[1:].split('.')[0]): v for k, v in feats.items() if k.endswith('.conv1')}


def teacher_d_levels(feats: Dict[str, jax.Array]) -> Dict[int, jax.Array]:
  """Teacher D ResBlock outputs by spatial size: {r/2: b{r}} and {4: b4.conv}."""
  out = {}
  for k, v in feats.items():
    if k == 'b4.conv' or (k.startswith('b') and '.' not in k):
      out[v.shape[1]] = v
  return out


def pairs(student_sizes, teacher_sizes):
  """The spatial sizes both sides have, sorted."""
  return sorted(set(student_sizes) & set(teacher_sizes))


# ----------------------------------------------------------------------------- projections


def init_projections(key, student_widths: Dict[str, Dict[int, int]],
                     teacher_widths: Dict[str, Dict[int, int]]) -> dict:
  """{term: {'s{size}': {'kernel' (C_s, C_t), 'bias'}}}: 1x1 convs from the student's
  width to the teacher's at every paired size (lecun-normal kernels, zero bias)."""
  out = {}
  init = jax.nn.initializers.lecun_normal()
  for i, term in enumerate(sorted(student_widths)):
    out[term] = {}
    for size in pairs(student_widths[term], teacher_widths[term]):
      k = jax.random.fold_in(jax.random.fold_in(key, i), size)
      cs, ct = student_widths[term][size], teacher_widths[term][size]
      out[term][f's{size}'] = {'kernel': init(k, (cs, ct)), 'bias': jnp.zeros((ct,))}
  return out


def project(p, f):
  return f @ p['kernel'] + p['bias']


def aligned_l1(proj: dict, student: Dict[int, jax.Array], teacher: Dict[int, jax.Array]):
  """sum over paired sizes of mean |P(student) - teacher| (teacher side constant)."""
  total = 0.0
  for name, p in proj.items():
    size = int(name[1:])
    total = total + jnp.mean(jnp.abs(project(p, student[size]) -
                                     jax.lax.stop_gradient(teacher[size])))
  return total


# ----------------------------------------------------------------------------- state and step


def feature_widths(scfg, teacher_cfg) -> tuple:
  """(student widths, teacher widths): {term: {size: channels}} by shape inference."""
  nets = sg.networks(scfg)
  x = jnp.zeros((1, scfg.resolution, scfg.resolution, 3))
  s = jnp.zeros((1, scfg.style_dim))
  y = jnp.zeros((1,), jnp.int32)
  params = jax.eval_shape(lambda: sg.init_params(scfg, jax.random.PRNGKey(0)))
  _, gf = jax.eval_shape(lambda p: nets['G'].apply({'params': p}, x, s, return_features=True),
                         params['G'])
  _, sf = jax.eval_shape(lambda p: nets['style'].apply({'params': p}, x, y,
                                                       return_features=True), params['style'])
  width = lambda d: {k: v.shape[-1] for k, v in d.items()}  # noqa: E731
  student = {'enc': width(gf['enc']), 'style': width(sf), 'dec': width(gf['dec'])}
  tgf, tdf = teacher_feature_shapes(teacher_cfg)
  td, tg = width(teacher_d_levels(tdf)), width(teacher_g_levels(tgf))
  return student, {'enc': td, 'style': td, 'dec': tg}


def teacher_feature_shapes(teacher_cfg) -> tuple:
  """(teacher G features, teacher D features), each {key: ShapeDtypeStruct} of one
  image, by shape inference alone (no weights are made or run)."""
  models = Models(teacher_cfg)
  timg = jnp.zeros((1, teacher_cfg.resolution, teacher_cfg.resolution, 3))
  tparams = jax.eval_shape(lambda: models.G.init(
      {'params': jax.random.PRNGKey(0), 'noise': jax.random.PRNGKey(0)},
      jnp.zeros((1, teacher_cfg.z_dim))))
  dparams = jax.eval_shape(lambda: models.D.init(jax.random.PRNGKey(0), timg))
  _, tdf = jax.eval_shape(lambda p: models.disc(p, timg), dparams['params'])
  ws = jnp.zeros((1, teacher_cfg.num_ws, teacher_cfg.w_dim))
  _, tgf = jax.eval_shape(lambda p, b: models.synth(p, b, ws, jax.random.PRNGKey(0), True),
                          tparams['params'], tparams['buffers'])
  return tgf, tdf


def init_state(config, scfg, teacher_cfg, key) -> dict:
  k_net, k_proj, key = jax.random.split(key, 3)
  params = sg.init_params(scfg, k_net)
  sw, tw = feature_widths(scfg, teacher_cfg)
  params['proj'] = init_projections(k_proj, sw, tw)
  opts = sg.optimizers(config.hparams, names=TRAINABLE + ('D',))
  return {'step': jnp.zeros((), jnp.int32), 'key': key, 'nets': params,
          'opt': {k: opts[k].init(params[k]) for k in opts},
          'ema': jax.tree.map(jnp.copy, {k: params[k] for k in sg.EMA_NETS})}  # own buffers


def make_step(config, scfg, teacher_cfg, mesh=None):
  """step(state, teacher G, teacher D) -> (state, metrics), jitted (with a mesh,
  the triplets are sharded over it: each device makes its share)."""
  k = config.kdit
  nets = sg.networks(scfg)
  tmodels = Models(teacher_cfg)
  triplets = make_triplets(teacher_cfg, config.hparams.batch_size, config.teacher.inject_index,
                           config.teacher.truncation, k.triplets)
  opts = sg.optimizers(config.hparams, names=TRAINABLE + ('D',))
  dom = jnp.zeros((config.hparams.batch_size,), jnp.int32)  # head 0: the teacher's domain

  def step_fn(state, teacher_g, teacher_d):
    key, k_trip = jax.random.split(state['key'])
    t = parallel.constrain_batch(triplets(teacher_g, k_trip), mesh)
    x1, x2, y = t['x1'], t['x2'], t['y']
    tg = teacher_g_levels(t['y_feats'])
    td1 = teacher_d_levels(tmodels.disc(teacher_d, x1)[1])
    td2 = teacher_d_levels(tmodels.disc(teacher_d, x2)[1])
    p = state['nets']

    def styles(q):
      return {'latent': nets['mapping'].apply({'params': q['mapping']}, t['z2'], dom),
              'reference': nets['style'].apply({'params': q['style']}, x2, dom)}

    fakes = {g: jax.lax.stop_gradient(nets['G'].apply({'params': p['G']}, x1, s))
             for g, s in styles(p).items()}

    def d_loss(dp):
      return sg.d_adversarial(nets['D'], dp, y, dom, list(fakes.values()), dom, k.r1)

    (_, d_metrics), grads = jax.value_and_grad(d_loss, has_aux=True)(p['D'])
    upd, opt_d = opts['D'].update(grads, state['opt']['D'], p['D'])
    d_params = optax.apply_updates(p['D'], upd)

    def g_loss(q):
      terms = {'adv': 0.0, 'dec': 0.0, 'out': 0.0}
      sty_feats = nets['style'].apply({'params': q['style']}, x2, dom, return_features=True)[1]
      enc_feats = None
      paths = styles(q)
      for s in paths.values():  # the mean over the latent- and reference-guided paths
        out, feats = nets['G'].apply({'params': q['G']}, x1, s, return_features=True)
        enc_feats = feats['enc']
        logits = nets['D'].apply({'params': d_params}, out, dom)
        terms['adv'] = terms['adv'] + sg.bce(logits, 1.0) / len(paths)
        terms['dec'] = terms['dec'] + aligned_l1(q['proj']['dec'], feats['dec'], tg) / len(paths)
        terms['out'] = terms['out'] + jnp.mean(jnp.abs(out - y)) / len(paths)
      terms['enc'] = aligned_l1(q['proj']['enc'], enc_feats, td1)
      terms['style'] = aligned_l1(q['proj']['style'], sty_feats, td2)
      kd = (k.gamma * terms['enc'] + k.tau * terms['style'] + k.alpha * terms['dec'] +
            k.beta * terms['out'])
      terms['kd'] = kd
      return k.lambda_adv * terms['adv'] + k.lambda_kdl * kd, terms

    trainable = {n: p[n] for n in TRAINABLE}
    (_, g_metrics), grads = jax.value_and_grad(g_loss, has_aux=True)(trainable)
    new_nets, new_opt = dict(p, D=d_params), dict(state['opt'], D=opt_d)
    for n in TRAINABLE:
      upd, new_opt[n] = opts[n].update(grads[n], state['opt'][n], p[n])
      new_nets[n] = optax.apply_updates(p[n], upd)
    new_ema = {n: ema(state['ema'][n], new_nets[n], config.hparams.ema_beta)
               for n in sg.EMA_NETS}
    new = {**state, 'step': state['step'] + 1, 'key': key, 'nets': new_nets, 'opt': new_opt,
           'ema': new_ema}
    return new, {**{f'd_{k2}': v for k2, v in d_metrics.items()},
                 **{f'g_{k2}': v for k2, v in g_metrics.items()}}
  return parallel.jit_step(step_fn, mesh, cache_as=('kdit_step', {
      'config': config.to_dict(), 'student': scfg, 'teacher': teacher_cfg}))


# ----------------------------------------------------------------------------- the run


def load_teacher(config) -> ModelBundle:
  return load_model(config.teacher.checkpoint, setting='teacher.checkpoint', seed=config.seed,
                    require_discriminator=True,
                    what='the StyleGAN2 teacher with its D (e.g. models/anime64)')


def train(config, workdir: Optional[str] = None, *, teacher: Optional[ModelBundle] = None,
          mesh=None):
  """Runs (or resumes) KDIT stage 1; returns (state, student bundle)."""
  teacher = teacher or load_teacher(config)
  teacher.require('D')
  tcfg = teacher.config
  if getattr(tcfg, 'arch', 'stylegan2') != 'stylegan2':
    raise ConfigError('KDIT distils a StyleGAN2 teacher (style mixing); teacher.checkpoint '
                      f'is a {type(tcfg).__name__}')
  scfg = sg.student_config(config.student, tcfg.resolution, latent_dim=tcfg.z_dim)
  mesh = mesh or parallel.config_mesh(config)
  parallel.check_batch(config.hparams.batch_size, mesh)
  run = Run(config, workdir, defaults=default_config(), architecture=scfg)
  state = run.restore(parallel.replicate(
      init_state(config, scfg, tcfg, jax.random.PRNGKey(config.seed)), mesh))
  step_fn = make_step(config, scfg, tcfg, mesh)
  g = teacher.nets['G_ema']
  teacher_g = parallel.replicate((g['params'], g['buffers']), mesh)
  teacher_d = parallel.replicate(teacher.nets['D']['params'], mesh)
  grid = make_triplets(tcfg, config.num_samples, config.teacher.inject_index,
                       config.teacher.truncation, config.kdit.triplets)(
                           teacher_g, jax.random.PRNGKey(config.seed + 1))
  start = run.start(state)
  log.info('KDIT stage 1: StarGAN v2 student (%dpx) from %s, steps %d..%d',
           scfg.resolution, teacher.source, start, config.steps)
  step = start
  while step < config.steps:
    state, metrics = step_fn(state, teacher_g, teacher_d)
    step += 1
    run.step_done(step, metrics, state)
    if run.sample_due(step):
      out = sg.sample_student(scfg, state)(grid['x1'], 0, reference=grid['x2'])
      run.grid(step, np.concatenate([np.asarray(grid['x1']), np.asarray(grid['x2']),
                                     np.asarray(grid['y']), out]), config.num_samples,
               'rows: x1, x2, y = G(Phi(s1, s2)), student(x1, E(x2))')
  model = sg.student_bundle(scfg, host(state['nets']), host(state['ema']),
                            source=f'kdit stage 1 from {teacher.source}')
  run.export(model, {'trainer': 'kdit', 'stage': 1, 'steps': step, 'teacher': teacher.source})
  return state, model
