"""Recommendations from implicit feedback (ALS / BPR, via the ``implicit`` library).

- :class:`ImplicitRecommender`: fit, ``recommend`` (batched, with cold start) and ``similar_items``;
- :func:`evaluate_recommender`: time or random split, ranking metrics, popularity baseline;
- :func:`update_model`: fold new interactions into a model without retraining;
- :func:`precompute`: every user's top-K to Parquet in chunks;
- :func:`publish_model` / :func:`from_artifact`: to and from the registry.
"""

from mlscale.apps.recommend._artifact import from_artifact, publish_model
from mlscale.apps.recommend.app import RecommendApp
from mlscale.apps.recommend.evaluate import EvaluationReport, evaluate_recommender, ranking_metrics
from mlscale.apps.recommend.model import ImplicitRecommender, Recommendations
from mlscale.apps.recommend.precompute import precompute
from mlscale.apps.recommend.update import update_model

__all__ = [
    "EvaluationReport",
    "ImplicitRecommender",
    "RecommendApp",
    "Recommendations",
    "application",
    "evaluate_recommender",
    "from_artifact",
    "precompute",
    "publish_model",
    "ranking_metrics",
    "update_model",
]

#: The entry point the stages find this application by (``mlscale.apps`` group).
application = RecommendApp()
