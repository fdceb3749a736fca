"""mcint.nis (under construction)."""
