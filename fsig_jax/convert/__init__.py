"""fsig_jax.convert."""
