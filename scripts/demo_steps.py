"""The steps of scripts/demo that are not granary commands: entity rows for the training sets, a
look at a training set, waiting for the feature server and querying it over HTTP.

Usage (from scripts/demo):
  demo_steps.py entity-rows DATA_DIR OUT_DIR       OUT_DIR/{customer_risk,demand_prediction}.parquet
  demo_steps.py show-training-set FILE SECONDS     rows, columns, time, the first rows
  demo_steps.py wait-health PORT TIMEOUT_SECONDS   until GET /health answers 200
  demo_steps.py query PORT SERVICE JOIN_KEY ID...  POST /get-online-features, print JSON and latency
  demo_steps.py push-failed-payment PORT CUSTOMER  POST /push a declined payment, read it back
"""
import datetime
import http.client
import json
import pathlib
import statistics
import sys
import time

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def entity_rows(data_dir, out_dir):
    """The label tables of the generated data are the spines of the two training sets: each row is
    an entity, a time and what the model must predict from the features as of that time."""
    data_dir, out_dir = pathlib.Path(data_dir), pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, source in [("customer_risk", "customer_risk_labels.parquet"),
                         ("demand_prediction", "bay_demand_labels")]:
        table = ds.dataset(data_dir / source, format="parquet").to_table()
        table = table.sort_by([("event_timestamp", "ascending")])
        path = out_dir / f"{name}.parquet"
        pq.write_table(table, path)
        print(f"{path}: {table.num_rows} entity rows ({', '.join(table.column_names)}), "
              f"from {source}")


def show_training_set(path, seconds):
    table = pq.read_table(path)
    print(f"{path}: {table.num_rows} rows x {table.num_columns} columns in {float(seconds):.2f}s")
    print(f"columns: {', '.join(table.column_names)}")
    frame = table.slice(0, 3).to_pandas()
    print("first 3 rows (one column a line):")
    width = max(len(name) for name in table.column_names)
    for name in table.column_names:
        values = "  ".join(f"{format_value(v):>24}" for v in frame[name])
        print(f"  {name:<{width}}  {values}")


def format_value(value):
    if value is None:
        return "null"
    if isinstance(value, float):
        return "null" if value != value else f"{value:.6g}"
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def request(conn, method, path, body=None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def send(conn, method, path, body=None):
    """request(), again after the pause the server asks for while it answers 503 (overloaded:
    its queue delay is short by design, and a shared machine can exceed it); 10 tries."""
    for _ in range(10):
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 503:
            return response.status, answer
        time.sleep(float(response.getheader("Retry-After", "1")))
    return response.status, answer


def wait_health(port, timeout_seconds):
    deadline = time.monotonic() + float(timeout_seconds)
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=2)
            status, body = request(conn, "GET", "/health")
            conn.close()
            if status == 200:
                print(f"GET /health: {body.decode()}")
                return 0
            last_error = f"HTTP {status}: {body.decode()}"
        except OSError as error:
            last_error = str(error)
        time.sleep(0.05)
    print(f"error: the feature server on 127.0.0.1:{port} was not healthy within "
          f"{timeout_seconds}s ({last_error})", file=sys.stderr)
    return 1


def query(port, service, join_key, ids):
    body = json.dumps({"feature_service": service, "entities": {join_key: [int(i) for i in ids]}})
    print(f"POST /get-online-features {body}")
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    start = time.perf_counter()
    status, answer = send(conn, "POST", "/get-online-features", body)
    first_ms = (time.perf_counter() - start) * 1e3
    if status != 200:
        print(f"error: HTTP {status}: {answer.decode()}", file=sys.stderr)
        return 1
    response = json.loads(answer)
    # One line per output column keeps the answer readable: the values and statuses of each entity.
    print('{"metadata": ' + json.dumps(response["metadata"]) + ',\n "results": [')
    lines = [" " + json.dumps(result) for result in response["results"]]
    print(",\n".join(lines) + "]}")
    warm = []
    for _ in range(50):
        start = time.perf_counter()
        status, _ = send(conn, "POST", "/get-online-features", body)
        warm.append((time.perf_counter() - start) * 1e3)
        if status != 200:
            print(f"error: HTTP {status} on a repeated request", file=sys.stderr)
            return 1
    conn.close()
    found = sum(s == "PRESENT" for r in response["results"][1:] for s in r["statuses"])
    total = sum(len(r["statuses"]) for r in response["results"][1:])
    print(f"{len(ids)} entities x {len(response['results']) - 1} features: {found} of {total} "
          f"values PRESENT; latency {first_ms:.2f} ms (first request, new connection), "
          f"{statistics.median(warm):.2f} ms (median of 50 more on the same connection)")
    return 0 if found > 0 else 1


def push_failed_payment(port, customer_id):
    """Reads the payment windows of a customer, pushes a declined payment to payments_push and
    reads them again: the window features count the push at once (online tiles)."""
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    names = ["payments_30d", "payment_failures_30d", "failure_rate_30d"]
    read = json.dumps({"features": [f"customer_payment_windows:{n}" for n in names],
                       "entities": {"customer_id": [int(customer_id)]}})

    def windows():
        status, answer = send(conn, "POST", "/get-online-features", read)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {answer.decode()}")
        results = json.loads(answer)["results"][1:]
        return {n: r["values"][0] for n, r in zip(names, results)}

    def show(values):
        return ", ".join(f"{n} {format_value(v)}" for n, v in values.items())

    before = windows()
    print(f"customer {customer_id} before: {show(before)}")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    push = json.dumps({"push_source_name": "payments_push", "to": "online",
                       "df": {"customer_id": [int(customer_id)], "event_timestamp": [now],
                              "amount": [12.5], "failed": [True], "payment_method": ["card"]}})
    print(f"POST /push {push}")
    status, answer = send(conn, "POST", "/push", push)
    if status != 200:
        print(f"error: HTTP {status}: {answer.decode()}", file=sys.stderr)
        return 1
    print(answer.decode())
    after = windows()
    conn.close()
    print(f"customer {customer_id} after:  {show(after)}")
    counted = (after["payments_30d"] == before["payments_30d"] + 1
               and after["payment_failures_30d"] == before["payment_failures_30d"] + 1)
    if not counted:
        print("error: the pushed payment is not in the 30-day windows", file=sys.stderr)
    return 0 if counted else 1


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[1], argv[2:]
    if command == "entity-rows":
        entity_rows(*args)
    elif command == "show-training-set":
        show_training_set(*args)
    elif command == "wait-health":
        return wait_health(*args)
    elif command == "query":
        return query(args[0], args[1], args[2], args[3:])
    elif command == "push-failed-payment":
        return push_failed_payment(*args)
    else:
        print(f"error: unknown step '{command}'\n{__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
