"""fsig_jax.losses."""
