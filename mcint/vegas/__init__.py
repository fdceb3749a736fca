"""mcint.vegas (under construction)."""
