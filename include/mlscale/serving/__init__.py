"""Online scoring: ``mlscale serve`` (see :mod:`mlscale.serving.scorer` for what a request goes through)."""

from mlscale.serving.policy import ModelServingPolicy, ServingPolicyError, load_serving_policy
from mlscale.serving.request import RequestInvalid
from mlscale.serving.response_log import read_response_log
from mlscale.serving.rollout import Rollout, read_rollout, write_rollout
from mlscale.serving.scorer import NotReady, OnlineScorer

__all__ = ["ModelServingPolicy", "NotReady", "OnlineScorer", "RequestInvalid", "Rollout", "ServingPolicyError",
           "load_serving_policy", "read_response_log", "read_rollout", "write_rollout"]
