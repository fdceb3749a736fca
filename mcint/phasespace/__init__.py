"""mcint.phasespace (under construction)."""
