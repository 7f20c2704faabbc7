# Dumps a Feast repository's definitions and store settings as JSON on stdout, for
# `granary import-feast` (cli/import_feast_command.cc). Run with a Python that has the feast
# package (the user's Feast environment):  python -c <this script> FEAST_REPO
# Reads the repository the way `feast apply` does (feature_store.yaml and its Python files); writes
# nothing. Objects are described by their attributes, not by Feast's protos, so that small
# changes between Feast versions do not matter.
import json
import sys
from pathlib import Path


def type_name(dtype):
    return str(dtype)  # "Int64", "Float32", "Array(String)", "Map", ...


def source_of(source):
    if source is None:
        return None
    out = {
        "name": source.name,
        "class": type(source).__name__,
        "timestamp_field": getattr(source, "timestamp_field", "") or "",
        "created_timestamp_column": getattr(source, "created_timestamp_column", "") or "",
        "date_partition_column": getattr(source, "date_partition_column", "") or "",
        "field_mapping": dict(getattr(source, "field_mapping", {}) or {}),
        "description": getattr(source, "description", "") or "",
        "tags": dict(getattr(source, "tags", {}) or {}),
        "owner": getattr(source, "owner", "") or "",
    }
    if hasattr(source, "path"):
        try:
            out["path"] = source.path
        except Exception:  # some sources raise for a missing path
            out["path"] = ""
    file_format = getattr(source, "file_format", None)
    if file_format is not None:
        out["file_format"] = type(file_format).__name__
    batch = getattr(source, "batch_source", None)
    if batch is not None:
        out["batch_source"] = source_of(batch)
    for attr in ("table", "query", "database"):
        value = getattr(source, attr, None)
        if isinstance(value, str) and value:
            out[attr] = value
    return out


def main():
    repo = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(repo))
    import feast
    from feast.repo_config import load_repo_config
    from feast.repo_operations import parse_repo

    config = load_repo_config(repo, repo / "feature_store.yaml")
    contents = parse_repo(repo)
    # What `feast apply` infers from the data: entity column types, timestamp fields, features of
    # views without a schema. Left as declared when the data cannot be read.
    inference_error = ""
    try:
        from feast.feature_store import FeatureStore
        from feast.inference import (update_data_sources_with_inferred_event_timestamp_col,
                                     update_feature_views_with_inferred_features_and_entities)
        provider = FeatureStore(repo_path=str(repo))._get_provider()
        update_data_sources_with_inferred_event_timestamp_col(
            [v.batch_source for v in contents.feature_views if v.batch_source is not None],
            config)
        update_feature_views_with_inferred_features_and_entities(
            provider, contents.feature_views, contents.entities, config)
    except Exception as e:  # reported by granary import-feast
        inference_error = f"{type(e).__name__}: {e}"

    def store_config(store):
        if store is None:
            return {}
        if isinstance(store, dict):
            return store
        return json.loads(store.model_dump_json()) if hasattr(store, "model_dump_json") else {}

    out = {
        "feast_version": feast.__version__,
        "repo": str(repo),
        "project": config.project,
        "provider": config.provider,
        "inference_error": inference_error,
        "online_store": store_config(config.online_store),
        "offline_store": store_config(config.offline_store),
        "entities": [{
            "name": e.name,
            "join_keys": [e.join_key],
            "value_type": e.value_type.name,
            "description": e.description or "",
            "tags": dict(e.tags or {}),
            "owner": e.owner or "",
        } for e in contents.entities],
        "data_sources": [source_of(s) for s in contents.data_sources],
        "feature_views": [{
            "name": v.name,
            "entities": list(v.entities),
            "entity_columns": [{"name": f.name, "dtype": type_name(f.dtype)}
                               for f in v.entity_columns],
            "schema": [{"name": f.name, "dtype": type_name(f.dtype),
                        "description": f.description or ""} for f in v.features],
            "ttl_seconds": int(v.ttl.total_seconds()) if v.ttl else 0,
            "online": bool(v.online),
            "offline": bool(getattr(v, "offline", True)),
            "batch_source": source_of(v.batch_source),
            "stream_source": source_of(v.stream_source),
            "description": v.description or "",
            "tags": dict(v.tags or {}),
            "owner": v.owner or "",
        } for v in contents.feature_views],
        "on_demand_feature_views": [v.name for v in contents.on_demand_feature_views],
        "stream_feature_views": [v.name for v in contents.stream_feature_views],
        "feature_services": [{
            "name": s.name,
            "projections": [{
                "view": p.name,
                "alias": p.name_alias or "",
                "features": [f.name for f in p.features],
            } for p in s.feature_view_projections],
            "description": s.description or "",
            "tags": dict(s.tags or {}),
            "owner": s.owner or "",
        } for s in contents.feature_services],
    }
    json.dump(out, sys.stdout)


main()
