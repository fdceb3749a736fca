"""Fused numba kernels; each module registers its kernels with ``mcint_numba.kernel``."""
