"""Composable bijections (forward/inverse/log-det) on (n, d) batches, for every backend."""

from .base import Compose, Inverse, Transform, check_batch, namespace
from .elementwise import Affine, Logit, Sigmoid

__all__ = ["Transform", "Compose", "Inverse", "Affine", "Logit", "Sigmoid", "check_batch",
           "namespace"]
