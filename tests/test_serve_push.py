"""granary serve end to end, POST /push offline: to a Parquet folder and to a Delta table read
back by the deltalake package, then read by the offline store through the push source.
"""
import datetime as dt

import pyarrow.parquet as pq

from serve_helpers import NOW, make_repo, push_body, rfc3339, serve  # noqa: F401


def test_push_offline_to_a_folder_and_a_delta_table(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    day = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    status, body = server.post("/push", push_body([7, 8], day, to="offline", rate=0.25))
    assert status == 200, body
    assert "online" not in body
    [path] = body["offline"]["files"]
    assert path.startswith("data/payments/part-") and path.endswith(".parquet")
    table = pq.read_table(repo / path)
    assert table.column("customer_id").to_pylist() == [7, 8]
    # Not online: materialization (or an online push) brings it there.
    _, online = server.post("/get-online-features", {"features": ["risk:rate"],
                                                     "entities": {"customer_id": [7]}})
    assert online["results"][1]["statuses"] == ["NOT_FOUND"]

    status, body = server.post("/push", {
        "push_source_name": "occupancy_push", "to": "online_and_offline",
        "df": {"customer_id": [7, 9], "event_timestamp": [rfc3339(day), rfc3339(NOW)],
               "occupied": [0.75, 0.25]}})
    assert status == 200, body
    assert body["offline"]["delta_version"] == 1
    assert body["online"]["written"] == 2
    from deltalake import DeltaTable
    delta = DeltaTable(str(repo / "data" / "occupancy"))
    assert delta.version() == 1
    rows = sorted(delta.to_pyarrow_table().to_pylist(), key=lambda r: r["customer_id"])
    assert [(r["customer_id"], r["occupied"], r["event_date"]) for r in rows] == [
        (1, 0.5, dt.date(2026, 1, 1)), (7, 0.75, dt.date(2026, 3, 1)),
        (9, 0.25, NOW.date())]
    # The offline store reads the pushed rows too (point-in-time, through the push source).
    (repo / "entities.csv").write_text("customer_id,event_timestamp\n7,2026-03-02T00:00:00Z\n"
                                       "8,2026-03-02T00:00:00Z\n")
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
              "--features", "risk:rate,bay:occupied", "--output", repo / "train.parquet",
              check=True)
    rows = pq.read_table(repo / "train.parquet").to_pylist()
    assert [(r["customer_id"], r["rate"], r["occupied"]) for r in rows] == [
        (7, 0.25, 0.75), (8, 0.25, None)], out.stderr
