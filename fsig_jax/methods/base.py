"""The method plug-in: a small record of pure functions the engine calls.

A method (TGAN, FreezeD, EWC, CDC, RICK, ...) changes adaptation through:
  init(ictx)                      -> MethodInit(state, g_extra, d_extra);
                                     ictx is a `context.InitContext`; a
                                     method that trains a stage of its own
                                     first (AdAM's probing) calls
                                     ictx.run_phase (checkpointed, resumable)
  g_terms(ctx, mstate)            -> {name: scalar} added to the G loss; ctx is
                                     a `context.StepContext`; arrays put in
                                     ctx.aux reach `update` as uctx.g_aux
  d_terms(ctx, mstate)            -> {name: scalar} added to the D loss
  grad_transform(side, g, p, ms)  -> grads   (masks, freezing), side 'G' or 'D';
                                     applied to gradients and to Adam's updates,
                                     so it must be idempotent (a mask)
  param_transform(side, p, ms)    -> params  (pruning; after each optimiser
                                     update and after each method update)
  update(uctx, mstate)            -> mstate  (queues, Fisher re-estimates, ...);
                                     uctx is a `context.UpdateContext`: the
                                     updated networks, the step's real batch,
                                     the G phase's latents and g_aux
  sample_z(key, step, ms, n)      -> list of z (anchors, ...), or None
  disc(ctx, d, img, ms)           -> logits  (patch discriminators), or None
  ada_signs(ctx, logits, ms)      -> the sum of the signs of D's real predictions
                                     as the official code counts them, for ADA's
                                     r_t (CDC: its image logit once on anchor
                                     steps, where `disc` broadcasts it), or None:
                                     every element of the logits
  report(ms, outdir)              -> list of files written (plots), or None;
                                     host-side, called by the loop with numpy state
  effective_params(side, p, ms)   -> the network params the forward passes use
                                     (default p['net']), e.g. AdAM's modulated
                                     kernels W * (1 + u v^T) from p['net'] and a
                                     method extra; differentiable in p. The EMA
                                     generator and exported nets hold these, so
                                     an exported model is a plain StyleGAN2. It
                                     may depend only on (side, p, ms): exports
                                     rebuild it from the registry by name.
`data` names image streams the method needs besides the target images,
{stream: {'source': folder / array, 'max_images': N, 'setting': the config
field that sets it (named in errors)}}: the
trainer loads each at the model's resolution and hands a batch of each per
step as ctx.extra[stream] (KD-FSIG's real source-domain images).
`g_extra` / `d_extra` are trainable parameters a method adds (for example
CDC's patch head); they live beside the network in state['G'] / state['D'] and
are optimised with it. A method's state lives in state['method'][name].
Methods compose with `compose`; term names must not collide.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import jax.numpy as jnp

Terms = Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class MethodInit:
  state: Any = dataclasses.field(default_factory=dict)
  g_extra: Dict[str, Any] = dataclasses.field(default_factory=dict)
  d_extra: Dict[str, Any] = dataclasses.field(default_factory=dict)


def _no_terms(ctx, mstate) -> Terms:
  return {}


def _identity_grads(side, grads, params, mstate):
  return grads


def _identity_params(side, params, mstate):
  return params


def _keep_state(uctx, mstate):
  return mstate


@dataclasses.dataclass(frozen=True)
class Method:
  """One adaptation method as pure functions; every field has a no-op default."""
  name: str
  init: Callable[..., MethodInit] = lambda ictx: MethodInit()
  g_terms: Callable[..., Terms] = _no_terms
  d_terms: Callable[..., Terms] = _no_terms
  grad_transform: Callable = _identity_grads
  param_transform: Callable = _identity_params
  update: Callable = _keep_state
  sample_z: Optional[Callable] = None
  disc: Optional[Callable] = None
  ada_signs: Optional[Callable] = None
  report: Optional[Callable] = None
  effective_params: Optional[Callable] = None
  data: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
  # The architectures (`Models.architecture`) whose layers and features the
  # method's functions know; the engine refuses the others with a clear error.
  architectures: Tuple[str, ...] = ('stylegan2', 'progan')
  # True when the method holds whole parameters out of training for a while
  # (RICK's warm-up): each parameter then keeps its own Adam step count, which
  # starts when it first gets a gradient, as torch's Adam does
  # (engine.state.make_optimizers).
  late_start: bool = False
  # ms -> bool scalar: whether G's lazy path-length regularisation runs this
  # step (None: always). RICK skips it during its warm-up, as the official loop.
  g_reg_active: Optional[Callable] = None


@dataclasses.dataclass(frozen=True)
class Composite:
  """Several methods applied together; the engine only talks to this."""
  methods: Sequence[Method]

  def __post_init__(self):
    names = [m.name for m in self.methods]
    if len(set(names)) != len(names):
      raise ValueError(f'a method appears twice in {names}')
    for hook in ('sample_z', 'disc', 'ada_signs'):
      owners = [m.name for m in self.methods if getattr(m, hook) is not None]
      if len(owners) > 1:
        raise ValueError(f'methods {owners} both override {hook}; they cannot be combined')

  @property
  def data(self) -> Dict[str, Dict[str, Any]]:
    """Every part's image streams (`Method.data`); names must not collide."""
    out = {}
    for m in self.methods:
      clash = set(out) & set(m.data)
      if clash:
        raise ValueError(f'data streams {sorted(clash)} are declared twice')
      out.update(m.data)
    return out

  @property
  def late_start(self) -> bool:
    return any(m.late_start for m in self.methods)

  @property
  def name(self) -> str:
    return '+'.join(m.name for m in self.methods) or 'none'

  def unsupported(self, architecture: str) -> List[str]:
    """Names of the parts that cannot adapt an `architecture` model."""
    return [m.name for m in self.methods if architecture not in m.architectures]

  def init(self, ictx) -> MethodInit:
    states, g_extra, d_extra = {}, {}, {}
    for m in self.methods:
      out = m.init(ictx)
      states[m.name] = out.state
      for mine, theirs in ((g_extra, out.g_extra), (d_extra, out.d_extra)):
        clash = set(mine) & set(theirs)
        if clash or 'net' in theirs:
          raise ValueError(f'{m.name} adds parameters {sorted(clash | {"net"} & set(theirs))} '
                           'that another part already uses')
        mine.update(theirs)
    return MethodInit(states, g_extra, d_extra)

  def _terms(self, which, ctx, mstates) -> Terms:
    out = {}
    for m in self.methods:
      terms = getattr(m, which)(ctx, mstates[m.name])
      clash = set(out) & set(terms)
      if clash:
        raise ValueError(f'loss term names {sorted(clash)} are produced twice')
      out.update(terms)
    return out

  def g_terms(self, ctx, mstates) -> Terms:
    return self._terms('g_terms', ctx, mstates)

  def d_terms(self, ctx, mstates) -> Terms:
    return self._terms('d_terms', ctx, mstates)

  def grad_transform(self, side, grads, params, mstates):
    for m in self.methods:
      grads = m.grad_transform(side, grads, params, mstates[m.name])
    return grads

  def param_transform(self, side, params, mstates):
    for m in self.methods:
      params = m.param_transform(side, params, mstates[m.name])
    return params

  def update(self, uctx, mstates):
    return {m.name: m.update(uctx, mstates[m.name]) for m in self.methods}

  def g_reg_active(self, mstates):
    """True unless a part turns G's lazy path-length regularisation off this step."""
    active = jnp.asarray(True)
    for m in self.methods:
      if m.g_reg_active is not None:
        active = active & m.g_reg_active(mstates[m.name])
    return active

  def effective_params(self, side: str, params, mstates):
    """The `side` network as the forward passes see it: every method's
    `effective_params` chained in order, starting from params['net']."""
    net = params['net']
    for m in self.methods:
      if m.effective_params is not None:
        net = m.effective_params(side, {**params, 'net': net}, mstates[m.name])
    return net

  def report(self, mstates, outdir: str):
    """Runs every method's host-side `report`; returns the files written."""
    files = []
    for m in self.methods:
      if m.report is not None:
        files.extend(m.report(mstates[m.name], outdir) or [])
    return files

  def hook(self, name: str) -> Tuple[Optional[str], Optional[Callable]]:
    """(owner method name, its `name` hook), or (None, None) if no method has one."""
    for m in self.methods:
      if getattr(m, name) is not None:
        return m.name, getattr(m, name)
    return None, None


def compose(*methods: Method) -> Composite:
  """Combine methods: terms are merged by name, transforms chained in order."""
  flat = []
  for m in methods:
    flat.extend(m.methods if isinstance(m, Composite) else [m])
  return Composite(tuple(flat))
