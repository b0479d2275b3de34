"""Shared command-line error handling: one clear line, exit code 2, no traceback."""
import sys


def fail(message: str, code: int = 2):
  """Prints `fsig-jax: error: message` to stderr and exits."""
  print(f'fsig-jax: error: {message}', file=sys.stderr, flush=True)
  raise SystemExit(code)
