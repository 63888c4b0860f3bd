"""Resource use of pipeline tasks and what it costs (see :mod:`mlscale.usage.sampler`, :mod:`mlscale.usage.cost`)."""

from mlscale.usage.cost import ComputePrices, load_prices
from mlscale.usage.sampler import UsageRecord, UsageSampler, read_usage, write_usage

__all__ = ["ComputePrices", "UsageRecord", "UsageSampler", "load_prices", "read_usage", "write_usage"]
