"""Feast's own Python SDK, run in .venv-feast (never .venv), as a client of a feature server.

    .venv-feast/bin/python tests/feast_client.py REPO < operations.json > results.json

REPO is a Feast repository whose feature_store.yaml has `online_store: {type: remote, path: URL}`
(the server under test: `feast serve` or `granary serve`). Each operation is run through
`feast.FeatureStore` exactly as a user would call it; each result is JSON (an exception becomes
{"error": "..."}):
  {"op": "get", "features": [...] | "feature_service": name, "entity_rows": [{...}],
   "full_feature_names": bool, "include_feature_view_version_metadata": bool}
      -> OnlineResponse.to_dict()
  {"op": "write", "feature_view_name": name, "df": {column: [values]}}   -> write_to_online_store
  {"op": "push", "push_source_name": name, "df": {column: [values]}, "to": "online"} -> push
  {"op": "grpc_get", "target": "127.0.0.1:PORT", "service": "ServingService" (Feast's Java and
   Go servers', Granary's) | "GrpcFeatureServer" (`feast listen`'s), "token": optional,
   "features": [...] |
   "feature_service": name, "entities": {key: [int, ...]}, "full_feature_names": bool}
      -> ServingService/GetOnlineFeatures with grpcio and Feast's own generated types, the
         response as MessageToDict (or {"error": code, "details": message})
  {"op": "historical", "df": {column: [values]} (the entity_df), "features": [...] |
   "feature_service": name, "full_feature_names": bool}
      -> get_historical_features(...).to_df() (through the repository's offline store: with
         `offline_store: {type: remote}`, Feast's Arrow Flight client) as {"columns": [names],
         "rows": [[values]]}
Columns named in "timestamps" are parsed as UTC datetimes first.
"""
import json
import math
import sys

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode


def frame(op):
    df = pd.DataFrame(op["df"])
    for column in op.get("timestamps", []):
        df[column] = pd.to_datetime(df[column], utc=True)
    return df


def safe(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [safe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def run(store, op):
    if op["op"] == "get":
        kwargs = {"full_feature_names": op.get("full_feature_names", False)}
        if "include_feature_view_version_metadata" in op:
            kwargs["include_feature_view_version_metadata"] = op[
                "include_feature_view_version_metadata"]
        if "feature_service" in op:
            features = store.get_feature_service(op["feature_service"])
        else:
            features = op["features"]
        response = store.get_online_features(features=features, entity_rows=op["entity_rows"],
                                             **kwargs)
        return {name: safe(values) for name, values in response.to_dict().items()}
    if op["op"] == "write":
        store.write_to_online_store(op["feature_view_name"], frame(op))
        return {"ok": True}
    if op["op"] == "push":
        to = {"online": PushMode.ONLINE, "offline": PushMode.OFFLINE,
              "online_and_offline": PushMode.ONLINE_AND_OFFLINE}[op.get("to", "online")]
        store.push(op["push_source_name"], frame(op), to=to)
        return {"ok": True}
    if op["op"] == "historical":
        if "feature_service" in op:
            features = store.get_feature_service(op["feature_service"])
        else:
            features = op["features"]
        df = store.get_historical_features(
            entity_df=frame(op), features=features,
            full_feature_names=op.get("full_feature_names", False)).to_df()
        return {"columns": list(df.columns),
                "rows": [[safe(None if pd.isna(v) else v) for v in row]
                         for row in df.itertuples(index=False)]}
    if op["op"] == "grpc_get":
        return grpc_get(op)
    raise ValueError(f"unknown op {op['op']}")


def grpc_get(op):
    import grpc
    from feast.protos.feast.serving import ServingService_pb2 as pb
    from feast.protos.feast.serving.GrpcServer_pb2_grpc import GrpcFeatureServerStub
    from feast.protos.feast.serving.ServingService_pb2_grpc import ServingServiceStub
    from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value
    from google.protobuf.json_format import MessageToDict

    request = pb.GetOnlineFeaturesRequest(full_feature_names=op.get("full_feature_names", False))
    if "feature_service" in op:
        request.feature_service = op["feature_service"]
    else:
        request.features.val.extend(op["features"])
    for key, values in op["entities"].items():
        request.entities[key].CopyFrom(RepeatedValue(val=[Value(int64_val=v) for v in values]))
    metadata = [("authorization", f"Bearer {op['token']}")] if op.get("token") else None
    with grpc.insecure_channel(op["target"]) as channel:
        try:
            stub = GrpcFeatureServerStub if op.get("service") == "GrpcFeatureServer" \
                else ServingServiceStub
            response = stub(channel).GetOnlineFeatures(request, metadata=metadata,
                                                                     timeout=30)
        except grpc.RpcError as e:
            return {"error": e.code().name, "details": e.details()}
    return MessageToDict(response)


def main():
    store = FeatureStore(repo_path=sys.argv[1])
    results = []
    for op in json.load(sys.stdin):
        try:
            results.append(run(store, op))
        except Exception as e:  # reported to the test, which asserts on it
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
