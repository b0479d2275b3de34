"""The house rules of the package layout, checked on the source (no imports run).

Every `import fsig_jax...` / `from fsig_jax... import ...` statement in
fsig_jax/, at module level or inside a function, is an edge of the module
graph. The graph has no cycle, and the layers point one way
(launch -> api -> engine/trainers -> methods -> losses -> models -> nn).
"""
import ast
import pathlib

from conftest import ROOT

PKG = ROOT / 'fsig_jax'

# A module of the first package may not import anything from the second.
FORBIDDEN = [
    ('fsig_jax.methods', 'fsig_jax.engine'),
    ('fsig_jax.methods', 'fsig_jax.api'),
    ('fsig_jax.losses', 'fsig_jax.methods'),
    ('fsig_jax.losses', 'fsig_jax.engine'),
    ('fsig_jax.models', 'fsig_jax.methods'),
    ('fsig_jax.models', 'fsig_jax.engine'),
    ('fsig_jax.models', 'fsig_jax.losses'),
    ('fsig_jax.models', 'fsig_jax.convert'),
    ('fsig_jax.nn', 'fsig_jax.models'),
    ('fsig_jax.run', 'fsig_jax.engine'),
    ('fsig_jax.run', 'fsig_jax.methods'),
    ('fsig_jax.errors', 'fsig_jax'),
    # The student trainers sit beside the adaptation engine, above methods and models.
    ('fsig_jax.engine', 'fsig_jax.distill'),
    ('fsig_jax.methods', 'fsig_jax.distill'),
    ('fsig_jax.losses', 'fsig_jax.distill'),
    ('fsig_jax.models', 'fsig_jax.distill'),
    ('fsig_jax.nn', 'fsig_jax.distill'),
    ('fsig_jax.distill', 'fsig_jax.api'),
    ('fsig_jax.models', 'fsig_jax.metrics'),
]


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def import_graph():
  """{module: set of fsig_jax modules it imports} over every file in fsig_jax/."""
  modules = {_module_name(p): p for p in PKG.rglob('*.py')}
  graph = {}
  for name, path in modules.items():
    deps = set()
    package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          base = '.'.join(package.split('.')[:len(package.split('.')) - node.level + 1] +
                          ([base] if base else []))
        # `from pkg import mod` runs pkg/__init__.py and reads a name from it: an edge
        # to pkg, and to pkg.mod when that is a module.
        targets = [base] + [f'{base}.{a.name}' for a in node.names]
      else:
        continue
      deps.update(t for t in targets if t in modules and t != name)
    graph[name] = deps
  return graph


def _cycle(graph):
  """One import cycle as a list of modules, or None."""
  state, stack = {}, []

  def visit(m):
    state[m] = 'open'
    stack.append(m)
    for d in sorted(graph[m]):
      if state.get(d) == 'open':
        return stack[stack.index(d):] + [d]
      if d not in state:
        found = visit(d)
        if found:
          return found
    stack.pop()
    state[m] = 'done'
    return None

  for m in sorted(graph):
    if m not in state:
      found = visit(m)
      if found:
        return found
  return None


def test_the_graph_sees_imports_inside_functions():
  """The check can fail: it reads function-level imports too."""
  graph = import_graph()
  assert 'fsig_jax.convert.load' in graph['fsig_jax.run']  # imported inside Run.export
  assert 'fsig_jax.methods.adam' in graph['fsig_jax.methods']
  # `from fsig_jax.engine import parallel` reaches the package and the module.
  assert {'fsig_jax.engine', 'fsig_jax.engine.parallel'} <= graph['fsig_jax.engine.step']


def test_no_import_cycle_inside_fsig_jax():
  assert _cycle(import_graph()) is None, ' -> '.join(_cycle(import_graph()))


def test_a_planted_cycle_is_found():
  assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']


def test_layers_point_one_way():
  graph = import_graph()
  bad = [f'{m} imports {d}' for m, deps in graph.items() for d in deps
         for low, high in FORBIDDEN
         if (m == low or m.startswith(low + '.')) and (d == high or d.startswith(high + '.'))]
  assert not bad, bad
