"""The XLA:CPU compiler setting fsig-jax runs with: YNNPACK fusions off.

jaxlib 0.10's XLA:CPU hands convolutions and matrix products to YNNPACK
fusions by default (`xla_cpu_experimental_ynn_fusion_type`; its help text
says the default list is empty, but a compiled convolution shows
`ynn_fusion` ops). For most of fsig-jax's programs on the 2-core CPU they
cost more than they give (`benchmarks/xla_cpu_options.py`, both settings in
one process, called in rotation; `benchmarks/results/xla_cpu_options_cpu.md`):
with them off the 64 px adaptation step loads from the compilation cache in
0.51x the time, holds 0.86x the temporaries and takes 0.97x the time per step
over a lazy cycle; KDIT's StarGAN v2 student step takes 0.93x, the FID-VGG
features 0.80x; GPD's unet_mspade student step is the exception, 1.14x. The
load matters most: a warm start's cache hit runs XLA's
`YnnFusionThunkFromProto`, which looks every fusion's instructions up by id in
the whole module, a cost that grows with the square of the program's size
(`perf record`, session 16). With them off the same ops run on XLA's own
kernels. Decision: off by default for every program of a process (one
setting, not one per trainer); GPD users who want its 14% back set
`FSIG_XLA_CPU_DEFAULTS=0` (below).

`apply_defaults()` adds `--xla_cpu_experimental_ynn_fusion_type=` (no YNN
fusion type) to `XLA_FLAGS` when `fsig_jax` is imported, which XLA reads once
per process when JAX first starts its backends; so it applies to every
program of a process that imports fsig_jax before its first JAX computation
(every launcher and benchmark does). It does nothing when:
  * `XLA_FLAGS` already names the option: the user's choice wins, e.g.
    `--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT` (XLA's
    enum names: LIBRARY_FUSION_TYPE_DOT, _ELTWISE, _REDUCE, _INDIVIDUAL_DOT,
    _INDIVIDUAL_CONVOLUTION);
  * `FSIG_XLA_CPU_DEFAULTS=0` is set: XLA's own defaults;
and it has no effect on GPU or TPU programs (the option is XLA:CPU's).
JAX's persistent compilation cache keys a program by XLA's flags too (a
program compiled with the option on and then off leaves two entries), so
switching the option never loads a program compiled the other way.
A single program can still be compiled either way with
`jitted.lower(...).compile(compiler_options=...)`, which is how the
benchmark compares the two in one process. The option only changes which
kernels compute the same operations: results agree to float32 rounding
(the conformance tests against the official outputs pass either way).
"""
import os
from typing import MutableMapping

from fsig_jax.utils import switches

OPTION = 'xla_cpu_experimental_ynn_fusion_type'
OPTIONS = {OPTION: ''}  # as compiler_options: no YNN fusion type
OPT_OUT = 'FSIG_XLA_CPU_DEFAULTS'


def apply_defaults(environ: MutableMapping[str, str] = os.environ) -> bool:
  """Adds fsig-jax's XLA:CPU option to environ['XLA_FLAGS'] unless the user set
  it or opted out; returns whether it was added."""
  if switches.is_off(environ.get(OPT_OUT)):
    return False
  flags = environ.get('XLA_FLAGS', '')
  if f'--{OPTION}' in flags:
    return False
  environ['XLA_FLAGS'] = f'{flags} --{OPTION}='.strip()
  return True
