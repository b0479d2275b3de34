"""fsig_jax.nn."""
