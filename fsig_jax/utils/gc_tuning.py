"""Python's cyclic garbage collector, tuned for tracing big programs.

Tracing a training step makes hundreds of thousands of Python objects
(equations, tracers, abstract values), and CPython's collector, at its default
thresholds (700, 10, 10), then runs full collections that walk every object
the process holds, the imported jax, flax, optax and TensorFlow modules
included. A second quickstart run (warm compilation cache, 2-core CPU) spent
2.5 s in the collector before its first step, 2.1 s of it in ten full
collections (timed with `gc.callbacks`).

`freeze_imports()` moves every object alive now, i.e. the imported modules,
into CPython's permanent generation, which collections skip (`gc.freeze`), and
raises the young-generation threshold to 10,000 objects: the same run then
spent 0.7 s in the collector (1.8 s less). Cycles made later are still collected. What the freeze holds is never
freed by the collector (reference counting still frees it), so call it once,
right after the imports; every launcher does (`utils.cli.run_main`).
"""
import gc

YOUNG_THRESHOLD = 10_000


def freeze_imports(young_threshold: int = YOUNG_THRESHOLD):
  """Freezes the objects alive now and raises the young-generation threshold."""
  gc.freeze()
  t0, t1, t2 = gc.get_threshold()
  gc.set_threshold(max(t0, young_threshold), t1, t2)
