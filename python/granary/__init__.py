"""Granary: a feature store for machine learning, from Python.

    from granary import FeatureStore
    store = FeatureStore(repo_path="examples/parking")
    training = store.get_historical_features(entity_df, features=[...]).to_df()
    online = store.get_online_features(features=[...], entity_rows=[{...}]).to_dict()
    store.materialize_incremental(end_date=datetime.now(timezone.utc)); store.status()
    store.push("payments_push", df, to="online_and_offline")

The API follows Feast's; docs/PYTHON.md lists every difference.
"""
import os

# Arrow's allocator (mimalloc) returns freed memory to the OS after 10 ms by default, and the
# training-set engine then spends more time on page faults than on joining (see the granary CLI).
# Only effective when granary is imported before pyarrow.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "5000")

import pyarrow  # noqa: E402  (loads libarrow before the native module that links it)

from ._granary import (  # noqa: E402
    AlreadyExists,
    Cancelled,
    Corruption,
    FailedPrecondition,
    GranaryError,
    InternalError,
    InvalidArgument,
    NotFound,
    StorageIOError,
    Unavailable,
    Unsupported,
)
from .definitions import (  # noqa: E402
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    Plan,
    PlanChange,
)
from .feature_store import FeatureStore, GranaryWarning  # noqa: E402
from .online_response import OnlineResponse  # noqa: E402
from .operations import (  # noqa: E402
    MaterializationRun,
    MaterializeReport,
    PushMode,
    PushResult,
    StoreStatus,
    ViewMaterialization,
    ViewStatus,
)
from .retrieval_job import RetrievalJob, TrainingSetStream  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "Corruption",
    "DataSource",
    "Entity",
    "FailedPrecondition",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "GranaryError",
    "GranaryWarning",
    "InternalError",
    "InvalidArgument",
    "MaterializationRun",
    "MaterializeReport",
    "NotFound",
    "OnlineResponse",
    "Plan",
    "PlanChange",
    "PushMode",
    "PushResult",
    "RetrievalJob",
    "StorageIOError",
    "StoreStatus",
    "TrainingSetStream",
    "Unavailable",
    "Unsupported",
    "ViewMaterialization",
    "ViewStatus",
]
