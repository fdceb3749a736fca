"""mcint.events (under construction)."""
