"""mcint.flows (under construction)."""
