"""Every validation error of `granary apply` names the file, line, object and field, and says how
to fix it; nothing is written to the registry when apply fails."""
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

GOOD = """\
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - name: payments
    path: data/payments.parquet
    timestamp_field: event_timestamp
feature_views:
  - name: customer_risk
    entities: [customer]
    source: payments
    ttl: 90d
    schema:
      - {name: failures_30d, type: int64}
      - {name: failure_rate_90d, type: float64}
feature_services:
  - name: risk_v1
    features:
      - customer_risk
"""


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "granary.yaml").write_text("project: checks\n")
    # A source file written by pyarrow (another tool than Granary).
    pq.write_table(pa.table({
        "customer_id": pa.array([1, 2], pa.int64()),
        "event_timestamp": pa.array([dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)],
                                    pa.timestamp("ms")),
        "failures_30d": pa.array([0, 3], pa.int32()),
        "failure_rate_90d": pa.array(["0.1", "0.2"], pa.string()),
    }), root / "data" / "payments.parquet")
    return root


def apply_with(cli, repo, text, ok=False):
    (repo / "defs.yaml").write_text(text)
    out = cli("-C", repo, "apply", check=ok)
    if not ok:
        assert not (repo / "data" / "registry.db").exists(), "a failed apply must write nothing"
    return out.stderr


def test_field_type_not_matching_the_source_column(cli, repo):
    err = apply_with(cli, repo, GOOD)
    assert ("defs.yaml:14: feature view 'customer_risk': field 'failure_rate_90d' is float64 but "
            "source column is string 'failure_rate_90d'; change the field's type") in err
    # int32 data read as int64 is a lossless widening, not an error.
    assert "failures_30d" not in err


def test_a_consistent_repository_applies(cli, repo):
    text = GOOD.replace("failure_rate_90d, type: float64", "failure_rate_90d, type: string")
    apply_with(cli, repo, text, ok=True)


def test_unknown_entity(cli, repo):
    err = apply_with(cli, repo, GOOD.replace("entities: [customer]", "entities: [costumer]"))
    assert ("defs.yaml:8: feature view 'customer_risk': unknown entity 'costumer', did you mean "
            "'customer'?") in err


def test_duplicate_name(cli, repo):
    (repo / "more.yaml").write_text(
        "entities:\n  - {name: customer, join_keys: [id], value_type: string}\n")
    err = apply_with(cli, repo, GOOD)
    assert "entity 'customer' is defined twice: here and at defs.yaml:2" in err
    assert "more.yaml:2" in err


def test_bad_ttl(cli, repo):
    err = apply_with(cli, repo, GOOD.replace("ttl: 90d", "ttl: 3 months"))
    assert "defs.yaml:11: feature view 'customer_risk': 'ttl' invalid duration '3 months'" in err
    assert "such as 90d, 36h" in err


def test_missing_timestamp_field(cli, repo):
    err = apply_with(cli, repo, GOOD.replace("    timestamp_field: event_timestamp\n", ""))
    assert "defs.yaml:4: data source 'payments': 'timestamp_field' is required" in err


def test_timestamp_field_that_is_not_a_column(cli, repo):
    err = apply_with(cli, repo, GOOD.replace("timestamp_field: event_timestamp", "timestamp_field: ts"))
    assert "data source 'payments': timestamp_field 'ts' is not a column of data/payments.parquet" in err


def test_feature_service_naming_an_unknown_view(cli, repo):
    err = apply_with(cli, repo, GOOD.replace("      - customer_risk\n", "      - customer_rsik\n"))
    assert ("defs.yaml:18: feature service 'risk_v1': unknown feature view 'customer_rsik', did you "
            "mean 'customer_risk'?") in err


def test_feature_service_naming_an_unknown_feature(cli, repo):
    err = apply_with(cli, repo, GOOD.replace(
        "      - customer_risk\n", "      - {view: customer_risk, features: [failures_3d]}\n"))
    assert ("feature service 'risk_v1': feature view 'customer_risk' has no feature 'failures_3d', "
            "did you mean 'failures_30d'?") in err


def test_unreadable_yaml(cli, repo):
    err = apply_with(cli, repo, GOOD.replace("  - name: customer_risk\n", "  - name: [customer_risk\n"))
    assert "defs.yaml:" in err and "unreadable YAML" in err


def test_every_error_is_reported_at_once(cli, repo):
    text = GOOD.replace("entities: [customer]", "entities: [costumer]").replace("ttl: 90d", "ttl: x")
    err = apply_with(cli, repo, text)
    assert "3 errors in the definitions:" in err  # the third: float64 vs string
    assert "'ttl' invalid duration 'x'" in err
    assert "unknown entity 'costumer'" in err
