"""Neural importance sampling (MadNIS-style): flows per channel on VEGAS maps, learned channel
weights, buffered training, defensive mixtures. The entry point is :class:`Integrator`."""

from .channel_weights import ChannelWeights
from .evaluate import MappedChannels
from .integrator import Integrator, NISResult, TrainingStatus
from .losses import LOSSES
from .sign_split import SignSplit

__all__ = ["ChannelWeights", "Integrator", "LOSSES", "MappedChannels", "NISResult",
           "SignSplit", "TrainingStatus"]
