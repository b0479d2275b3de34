"""fsig_jax.utils."""
