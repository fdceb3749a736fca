"""Neural importance sampling (MadNIS-style): flows per channel on VEGAS maps, learned channel
weights, buffered training, defensive mixtures. The entry point is :class:`Integrator`; its
options come in groups (:class:`SamplerOptions`, :class:`TrainingOptions`,
:class:`ChannelOptions`) or as flat keywords."""

from .channel_weights import ChannelWeights
from .evaluate import MappedChannels
from .integrator import Integrator, NISResult, TrainingStatus
from .losses import LOSSES
from .options import ChannelOptions, SamplerOptions, TrainingOptions
from .sign_split import SignSplit

__all__ = ["ChannelOptions", "ChannelWeights", "Integrator", "LOSSES", "MappedChannels",
           "NISResult", "SamplerOptions", "SignSplit", "TrainingOptions", "TrainingStatus"]
