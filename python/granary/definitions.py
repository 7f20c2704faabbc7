"""The registry's objects as Python values, named as in Feast (Entity, FeatureView, ...).

They are read-only snapshots of the latest applied registry version: Granary's definitions live in
the repository's YAML files (`apply()` stores them), so these objects are for reading, not for
building definitions in code.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Dict, List, Optional


@dataclasses.dataclass(frozen=True)
class Field:
    """A feature or join key: its name and Granary type ("int64", "float64", "list<string>", ...)."""

    name: str
    dtype: str
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Entity:
    name: str
    join_keys: List[str]
    value_types: List[str]
    description: str = ""
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)
    location: str = ""  # where it is defined: "<registry> (version N):<line>" when read back

    @property
    def join_key(self) -> str:
        """The first join key (Feast entities have exactly one)."""
        return self.join_keys[0]

    @property
    def value_type(self) -> str:
        """The type of the first join key."""
        return self.value_types[0]


@dataclasses.dataclass(frozen=True)
class DataSource:
    name: str
    format: str  # "parquet", "csv" or "delta"
    path: str  # "" when the source is a table or a query
    timestamp_field: str
    created_timestamp_column: str = ""
    date_partition_column: str = ""
    field_mapping: Dict[str, str] = dataclasses.field(default_factory=dict)
    description: str = ""
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)
    location: str = ""
    table: str = ""  # a catalog table (catalog.schema.name), read by the spark engine
    query: str = ""  # a SQL query, read by the spark engine


@dataclasses.dataclass(frozen=True)
class FeatureView:
    name: str
    entities: List[str]
    entity_columns: List[Field]
    features: List[Field]
    source: DataSource
    ttl: dt.timedelta  # timedelta(0): no limit
    online: bool = True
    # Expiry of the view's online keys after their last write; None: the online store's key_ttl.
    online_key_ttl: Optional[dt.timedelta] = None
    owner: str = ""
    description: str = ""
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)
    location: str = ""

    @property
    def schema(self) -> List[Field]:
        """Entity columns, then features (as Feast's FeatureView.schema)."""
        return list(self.entity_columns) + list(self.features)

    @property
    def batch_source(self) -> DataSource:
        return self.source

    @property
    def join_keys(self) -> List[str]:
        return [f.name for f in self.entity_columns]


@dataclasses.dataclass(frozen=True)
class FeatureViewProjection:
    """The features a feature service takes from one view."""

    name: str  # the view's name
    features: List[Field]

    def name_to_use(self) -> str:
        return self.name

    @property
    def feature_refs(self) -> List[str]:
        return [f"{self.name}:{f.name}" for f in self.features]


@dataclasses.dataclass(frozen=True)
class FeatureService:
    name: str
    feature_view_projections: List[FeatureViewProjection]
    owner: str = ""
    description: str = ""
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)
    location: str = ""

    @property
    def feature_refs(self) -> List[str]:
        """Every feature as "view:feature", in order."""
        return [ref for p in self.feature_view_projections for ref in p.feature_refs]


@dataclasses.dataclass(frozen=True)
class PlanChange:
    action: str  # "add", "update" or "remove"
    kind: str  # "entity", "data source", "feature view" or "feature service"
    name: str
    changed_keys: List[str]  # for "update": the keys whose values differ


@dataclasses.dataclass(frozen=True)
class Plan:
    """What `plan()` would change, or what `apply()` changed."""

    changes: List[PlanChange]
    up_to_date: bool  # the registry already holds these definitions
    previous_version: Optional[int]  # the registry's latest version before the call
    applied_version: Optional[int]  # the version apply() wrote (None for plan() or up to date)
    warnings: List[str]
    text: str  # the changes, one per line, as `granary plan` prints them

    def __str__(self) -> str:
        return self.text


def _micros(value: int) -> dt.timedelta:
    return dt.timedelta(microseconds=value)


class Catalog:
    """The objects of one registry version, built from the native module's dicts."""

    def __init__(self, raw: dict):
        self.version: int = raw["version"]
        self.project: str = raw["project"]
        self.entities: Dict[str, Entity] = {}
        for e in raw["entities"]:
            self.entities[e["name"]] = Entity(
                name=e["name"], join_keys=list(e["join_keys"]),
                value_types=list(e["join_key_types"]), description=e["description"],
                tags=dict(e["tags"]), location=e["location"])
        self.data_sources: Dict[str, DataSource] = {}
        for s in raw["data_sources"]:
            self.data_sources[s["name"]] = DataSource(
                name=s["name"], format=s["type"], path=s["path"],
                timestamp_field=s["timestamp_field"],
                created_timestamp_column=s["created_timestamp_column"],
                date_partition_column=s["date_partition_column"],
                field_mapping=dict(s["field_mapping"]), description=s["description"],
                tags=dict(s["tags"]), location=s["location"], table=s["table"],
                query=s["query"])
        self.feature_views: Dict[str, FeatureView] = {}
        for v in raw["feature_views"]:
            entity_columns = []
            for name in v["entities"]:
                entity = self.entities.get(name)
                if entity is not None:
                    entity_columns += [Field(k, t) for k, t in
                                       zip(entity.join_keys, entity.value_types)]
            key_ttl = v["online_key_ttl_micros"]
            self.feature_views[v["name"]] = FeatureView(
                name=v["name"], entities=list(v["entities"]), entity_columns=entity_columns,
                features=[Field(f["name"], f["dtype"], f["description"]) for f in v["schema"]],
                source=self.data_sources.get(v["source"]), ttl=_micros(v["ttl_micros"]),
                online=v["online"], online_key_ttl=_micros(key_ttl) if key_ttl else None,
                owner=v["owner"], description=v["description"], tags=dict(v["tags"]),
                location=v["location"])
        self.feature_services: Dict[str, FeatureService] = {}
        for s in raw["feature_services"]:
            projections = []
            for p in s["projections"]:
                view = self.feature_views.get(p["view"])
                by_name = {f.name: f for f in view.features} if view else {}
                if p["features"]:
                    features = [by_name.get(n, Field(n, "")) for n in p["features"]]
                else:
                    features = list(view.features) if view else []
                projections.append(FeatureViewProjection(p["view"], features))
            self.feature_services[s["name"]] = FeatureService(
                name=s["name"], feature_view_projections=projections, owner=s["owner"],
                description=s["description"], tags=dict(s["tags"]), location=s["location"])


def make_plan(raw: dict) -> Plan:
    return Plan(
        changes=[PlanChange(c["action"], c["kind"], c["name"], list(c["changed_keys"]))
                 for c in raw["changes"]],
        up_to_date=raw["up_to_date"], previous_version=raw["previous_version"],
        applied_version=raw["applied_version"], warnings=list(raw["warnings"]), text=raw["text"])
