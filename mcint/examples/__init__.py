"""mcint.examples (under construction)."""
