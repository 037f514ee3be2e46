"""The dashboard's panels on a real SQLite prediction log: exact counts per bucket, class, bin and label."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ml_project.dashboard import (
    FORECAST_PANELS,
    MAX_BUCKETS,
    MAX_SERIES,
    TOP_CLASSES,
    BundleInfo,
    DashboardError,
    Selection,
    Sources,
    panels,
    parse_selection,
)
from ml_project.prediction_log import LoggedPrediction, PredictionLog, write_labels

T0 = datetime(2026, 11, 20, 12, 0, 0)
NOW = datetime(2026, 11, 23, 12, 0, 0)
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]


def card(version: str, task: str = "classification", metric: str = "f1_macro") -> BundleInfo:
    return BundleInfo(
        model_name="penguins",
        version=version,
        card={"model_name": "penguins", "version": version, "task": task, "target": "species", "metric": metric,
              "algorithm": "random_forest", "trained_at": "2026-11-20T10:00:00+00:00"},
        metrics={"holdout": {metric: 0.9}, "cv": {metric: 0.8}},
        leaderboard=[{"rank": 1, "trial": 3, "algorithm": "random_forest", f"mean_{metric}": 0.8, f"std_{metric}": 0.01}],
        task=task,
    )


def log_rows(url: str, rows: list[tuple[str, str, Any, datetime]], model_name: str = "penguins") -> None:
    """(request_id, model_version, prediction, logged_at) rows, written through the real PredictionLog."""
    with PredictionLog(url) as log:
        log.write([LoggedPrediction(rid, model_name, version, {"x": 1.0}, value, logged_at=at) for rid, version, value, at in rows])


def selection(**params: str) -> Selection:
    return parse_selection(params, NOW)


def sources(url: str | None, served: BundleInfo | None = None, **extra: Any) -> Sources:
    return Sources(model_name="penguins", served=served or card("2"), log_url=url, **extra)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


def test_selection_defaults_and_windows() -> None:
    assert selection() == Selection(now=NOW, window="all")
    assert selection(window="24h").since == NOW - timedelta(days=1)
    assert selection(window="7d", until="2026-11-10T00:00:00Z").since == datetime(2026, 11, 3)
    # an offset is turned into UTC; since wins over the window
    chosen = selection(window="1h", since="2026-11-23T08:00:00+02:00", version="5")
    assert (chosen.since, chosen.until, chosen.version) == (datetime(2026, 11, 23, 6), None, "5")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": "2w"}, "query parameter window = '2w' is not one of: 1h, 6h, 24h, 7d, 30d, 90d, all"),
        ({"since": "yesterday"}, "query parameter since = 'yesterday' is not an ISO 8601 time such as 2026-11-23T12:00:00Z"),
        ({"since": "2026-11-23", "until": "2026-11-22"}, "query parameter since = 2026-11-23T00:00:00Z is not before until = 2026-11-22T00:00:00Z"),
        ({"since": "0001-01-01T00:19:00+01:00"}, "query parameter since = '0001-01-01T00:19:00+01:00' is not between 1970 and 9999, such as 2026-11-23T12:00:00Z"),
        ({"until": "1969-12-31"}, "query parameter until = '1969-12-31' is not between 1970 and 9999, such as 2026-11-23T12:00:00Z"),
        ({"versoin": "1"}, "query parameter 'versoin' is not known; use: window, since, until, version"),
        ({"version": "x" * 129}, "query parameter version has 129 characters; at most 128"),
    ],
)
def test_a_bad_query_parameter_is_one_line_naming_it(params: dict[str, str], message: str) -> None:
    with pytest.raises(DashboardError) as caught:
        parse_selection(params, NOW)
    assert str(caught.value) == message


def test_volume_counts_each_bucket_and_version_exactly(url: str) -> None:
    rows = [(f"a{i}", "1", "Adelie", T0 + timedelta(minutes=10 * i)) for i in range(30)]  # 5 hours, 6 per hour
    rows += [(f"b{i}", "2", "Gentoo", T0 + timedelta(hours=2, minutes=30 * i)) for i in range(4)]
    rows += [("other", "2", "Gentoo", T0)]  # another model's row is not counted
    log_rows(url, rows[:-1])
    log_rows(url, rows[-1:], model_name="otter")
    volume = panels(["volume"], sources(url), selection())["volume"]
    assert volume["state"] == "ok" and volume["total"] == 34
    assert volume["bucket_seconds"] == 300  # 4h50m span: the smallest width giving at most 120 buckets
    assert volume["bucket_starts"][:2] == ["2026-11-20T12:00:00Z", "2026-11-20T12:05:00Z"]
    assert len(volume["bucket_starts"]) == 59  # 12:00 .. 16:50 in 5-minute steps
    one, two = volume["series"]
    assert one["model_version"] == "1" and sum(one["counts"]) == 30
    assert one["counts"][:4] == [1, 0, 1, 0]
    assert two["model_version"] == "2" and [i for i, n in enumerate(two["counts"]) if n] == [24, 30, 36, 42]
    assert (volume["first_logged_at"], volume["last_logged_at"]) == ("2026-11-20T12:00:00Z", "2026-11-20T16:50:00Z")

    only_two = panels(["volume"], sources(url), selection(version="2"))["volume"]
    assert [series["model_version"] for series in only_two["series"]] == ["2"] and only_two["total"] == 4
    window = panels(["volume"], sources(url), selection(since="2026-11-20T16:00:00", until="2026-11-20T16:30:00"))["volume"]
    assert window["total"] == 3 and window["bucket_seconds"] == 60  # logged_at in [since, until): 16:00, 16:10, 16:20


def test_a_window_ending_now_has_buckets_up_to_now(url: str) -> None:
    log_rows(url, [("a", "2", "Adelie", NOW - timedelta(hours=20))])
    volume = panels(["volume"], sources(url), selection(window="24h"))["volume"]
    assert volume["bucket_seconds"] == 900 and len(volume["bucket_starts"]) <= MAX_BUCKETS + 1
    assert volume["bucket_starts"][0] == "2026-11-22T12:00:00Z" and volume["bucket_starts"][-1] == "2026-11-23T12:00:00Z"
    assert sum(volume["series"][0]["counts"]) == 1


def test_class_mix_counts_each_class_and_folds_the_tail_into_other(url: str) -> None:
    rows = [(f"r{i}", "2", CLASSES[i % 3], T0) for i in range(10)]
    log_rows(url, rows)
    mix = panels(["predictions"], sources(url), selection())["predictions"]
    assert mix == {
        "state": "ok",
        "task": "classification",
        "total": 10,
        "classes": [
            {"class": "Adelie", "count": 4, "share": 0.4},
            {"class": "Chinstrap", "count": 3, "share": 0.3},
            {"class": "Gentoo", "count": 3, "share": 0.3},
        ],
    }
    many = [(f"m{i}", "2", f"class-{i:02d}", T0) for i in range(TOP_CLASSES + 3)]
    log_rows(url, many)
    classes = panels(["predictions"], sources(url), selection())["predictions"]["classes"]
    assert len(classes) == TOP_CLASSES + 1
    assert classes[:3] == [{"class": "Adelie", "count": 4, "share": 4 / 25}, *[{"class": name, "count": 3, "share": 3 / 25} for name in CLASSES[1:]]]
    assert classes[-1] == {"class": "6 other classes", "count": 6, "share": 6 / 25}  # 18 classes: the last 6 of 15 ones


def test_regression_histogram_counts_every_prediction_in_sql(url: str) -> None:
    log_rows(url, [(f"r{i}", "2", float(i), T0) for i in range(300)])  # 0 .. 299: 10 per bin
    histogram = panels(["predictions"], sources(url, card("2", "regression", "rmse")), selection())["predictions"]
    assert histogram["task"] == "regression" and histogram["total"] == 300
    assert histogram["counts"] == [10] * 30  # the largest value lands in the last bin
    assert (histogram["min"], histogram["max"], histogram["mean"]) == (0.0, 299.0, 149.5)
    assert histogram["edges"][0] == 0.0 and histogram["edges"][-1] == pytest.approx(299.0)


def test_the_task_comes_from_the_log_when_no_bundle_is_known(url: str) -> None:
    log_rows(url, [("r1", "2", 3.5, T0), ("r2", "2", 4.5, T0)])
    found = panels(["predictions"], Sources(model_name="penguins", log_url=url), selection())["predictions"]
    assert found["task"] == "regression" and found["counts"][0] == 1 and found["counts"][-1] == 1


def test_rolling_accuracy_uses_the_latest_row_of_a_request_id_and_only_matched_labels(url: str) -> None:
    hour = timedelta(hours=1)
    rows = [(f"r{i}", "2", "Adelie", T0 + hour * (i // 2)) for i in range(8)]  # 2 per hour, 4 hours
    rows.append(("r0", "2", "Gentoo", T0 + hour * 3))  # r0 answered again later: this row counts, in hour 3
    log_rows(url, rows)
    none_yet = panels(["labels"], sources(url), selection())["labels"]
    assert none_yet == {"state": "empty", "message": "no labels yet: run monitoring_production_data_local with --labels to store them"}

    truth = {"r0": "Adelie", "r1": "Adelie", "r2": "Gentoo", "r3": "Adelie", "r6": "Adelie", "r7": "Adelie", "ghost": "Adelie"}
    assert write_labels(url, list(truth.items())) == 7
    labelled = panels(["labels"], sources(url), selection())["labels"]
    assert labelled["bucket_seconds"] == 300 and labelled["labelled_total"] == 6 and labelled["predictions_total"] == 9
    per_hour = {start: (n, c) for start, n, c in zip(labelled["bucket_starts"], labelled["labelled"], labelled["correct"]) if n}
    assert per_hour == {
        "2026-11-20T12:00:00Z": (1, 1),  # r1 (r0's first row is not its latest)
        "2026-11-20T13:00:00Z": (2, 1),  # r2 wrong, r3 right
        "2026-11-20T15:00:00Z": (3, 2),  # r6, r7 right; r0's latest (Gentoo) wrong
    }
    assert labelled["accuracy_total"] == 4 / 6
    index = labelled["bucket_starts"].index("2026-11-20T15:00:00Z")
    assert labelled["accuracy"][index] == 2 / 3
    assert labelled["rolling_accuracy"][index] == 2 / 3  # the 5 buckets before hold no label
    assert labelled["rolling_accuracy"][labelled["bucket_starts"].index("2026-11-20T13:00:00Z")] == 1 / 2
    assert labelled["rolling_accuracy"][labelled["bucket_starts"].index("2026-11-20T13:05:00Z")] == 1 / 2

    write_labels(url, [("r2", "Adelie")])  # a corrected label replaces the earlier one
    assert panels(["labels"], sources(url), selection())["labels"]["accuracy_total"] == 5 / 6
    later = panels(["labels"], sources(url), selection(since="2026-11-20T16:00:00"))["labels"]
    assert later == {"state": "empty", "message": "no predictions logged from 2026-11-20T16:00:00Z until now"}
    # within a window the latest row of a request id is the latest in it, as monitoring joins labels:
    # before 12:30, r0's first answer (Adelie, right) counts
    early = panels(["labels"], sources(url), selection(until="2026-11-20T12:30:00", version="2"))["labels"]
    assert (early["labelled_total"], early["accuracy_total"]) == (2, 1.0)


def test_regression_actual_vs_predicted_means_per_bucket(url: str) -> None:
    log_rows(url, [("a", "2", 10.0, T0), ("b", "2", 20.0, T0), ("c", "2", 30.0, T0 + timedelta(minutes=3))])
    write_labels(url, [("a", 12.0), ("b", 22.0), ("c", 27.0)])
    labelled = panels(["labels"], sources(url, card("2", "regression", "rmse")), selection())["labels"]
    assert labelled["bucket_seconds"] == 60
    assert labelled["actual_mean"] == [17.0, None, None, 27.0]
    assert labelled["predicted_mean"] == [15.0, None, None, 30.0]
    assert labelled["mae"] == [2.0, None, None, 3.0] and labelled["mae_total"] == 7 / 3


def test_empty_off_and_unavailable_states_say_why(tmp_path: Path, url: str) -> None:
    names = ["volume", "predictions", "labels"]
    missing = panels(names, sources(url), selection())
    assert missing["volume"] == {"state": "empty", "message": f"no predictions logged yet: no prediction log at {url}"}
    log_rows(url, [])
    assert panels(names, sources(url), selection())["labels"] == {"state": "empty", "message": "no predictions logged yet"}
    assert panels(["volume"], sources(url), selection(version="9"))["volume"]["message"] == "no predictions of version 9 logged yet"
    off = panels(names, sources(None), selection())
    assert off["predictions"] == {"state": "off", "message": "the prediction log is off (prediction_log.enabled = false)"}
    (tmp_path / "junk.db").write_text("not a database")
    broken = panels(["volume"], sources(f"sqlite:///{tmp_path / 'junk.db'}"), selection())["volume"]
    assert broken["state"] == "unavailable" and broken["message"].startswith(f"prediction log sqlite:///{tmp_path / 'junk.db'}: cannot open: ")


def write_bundle_card(models: Path, version: str, **card_changes: Any) -> Path:
    folder = models / "penguins" / version
    folder.mkdir(parents=True)
    card_data = {"model_name": "penguins", "version": version, "task": "classification", "target": "species",
                 "metric": "log_loss", "algorithm": "logistic_regression", "params": {"C": 1.0},
                 "trained_at": "2026-11-01T00:00:00+00:00", **card_changes}
    (folder / "model.json").write_text(json.dumps(card_data))
    (folder / "metrics.json").write_text(json.dumps({"holdout": {"log_loss": 0.2}, "cv": {"log_loss": 0.25}}))
    (folder / "leaderboard.csv").write_text(
        "rank,trial,algorithm,params,mean_log_loss,std_log_loss\n"
        + "".join(f'{rank},{rank + 4},logistic_regression,"{{""C"": {rank}}}",0.{rank},0.01\n' for rank in range(1, 13))
    )
    return folder


def test_the_model_card_of_the_served_and_of_a_registry_version(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_bundle_card(models, "1")
    write_bundle_card(models, "2", algorithm="random_forest")
    (models / "penguins" / "champion").symlink_to("1")
    (models / "penguins" / "latest").symlink_to("2")
    here = Sources(model_name="penguins", served=BundleInfo.from_folder(models / "penguins" / "2"), models=models)
    served = panels(["model"], here, selection())["model"]
    assert (served["version"], served["champion"], served["served"], served["champion_version"]) == ("2", False, True, "1")
    assert served["registry_versions"] == ["1", "2"] and served["algorithm"] == "random_forest"
    assert served["greater_is_better"] is False and served["holdout_metrics"] == {"log_loss": 0.2}
    assert [row["rank"] for row in served["leaderboard"]] == list(range(1, 11))  # the top 10 of 12
    assert served["leaderboard"][0] == {"rank": 1, "trial": 5, "algorithm": "logistic_regression", "params": '{"C": 1}',
                                        "mean_log_loss": 0.1, "std_log_loss": 0.01}
    other = panels(["model"], here, selection(version="1"))["model"]
    assert (other["version"], other["champion"], other["served"]) == ("1", True, False)
    unknown = panels(["model"], here, selection(version="../1"))["model"]
    assert unknown["state"] == "empty"
    assert unknown["message"] == "model penguins version ../1 is not in the registry here; its logged predictions are shown"
    nothing = panels(["model"], Sources(model_name="penguins", models=tmp_path / "none"), selection())["model"]
    assert nothing["message"] == "no model penguins yet: train one with ./executables/run.sh"
    deployed = Sources(model_name="penguins", served=card("7"), served_as="champion")
    assert panels(["model"], deployed, selection())["model"]["champion"] is True
    assert panels(["model"], Sources(model_name="penguins", served=card("7")), selection())["model"]["champion"] is None


def write_summary(reports: Path, stamp: str, model_name: str = "penguins", versions: dict[str, int] | None = None, **drift: Any) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"drift-{stamp}.html").write_text("<html>drift</html>")
    summary = {
        "created_at": f"{stamp}", "model_name": model_name, "reference": {"model_version": "2"}, "rows": 40,
        "model_versions": versions or {"2": 40},
        "drift": {"drift_detected": False, "drift_share": 0.0, "threshold": 0.5, "drifted_columns": [], "per_column": {}, **drift},
        "quality": None,
        "reports": {"drift_html": str(reports / f"drift-{stamp}.html"), "quality_html": str(reports / f"quality-{stamp}.html"),
                    "summary_json": str(reports / f"monitoring-{stamp}.json")},
    }
    (reports / f"monitoring-{stamp}.json").write_text(json.dumps(summary))


def test_drift_shows_the_newest_summary_of_this_model_and_links_existing_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    here = Sources(model_name="penguins", reports=reports)
    first = panels(["drift"], here, selection())["drift"]
    assert first == {"state": "empty", "message": f"no monitoring run yet: run ./executables/run.sh monitoring_production_data_local (reports go to {reports})"}
    write_summary(reports, "20261120T000000Z", drift_detected=True, drift_share=1.0, drifted_columns=["x"])
    write_summary(reports, "20261121T000000Z", versions={"1": 40})
    write_summary(reports, "20261122T000000Z", model_name="otter")
    (reports / "monitoring-holdout-2.json").write_text("{}")  # a modelling run's baseline, not production
    (reports / "drift-holdout-2.html").write_text("<html>holdout</html>")
    (reports / "monitoring-20261123T000000Z.json").write_text("{half written")
    newest = panels(["drift"], here, selection())["drift"]
    assert (newest["summary_file"], newest["drift_detected"]) == ("monitoring-20261121T000000Z.json", False)
    assert newest["reports"] == {"drift": "drift-20261121T000000Z.html"}  # the quality report was never written
    assert newest["baseline_reports"] == {"drift": "drift-holdout-2.html"}
    of_two = panels(["drift"], here, selection(version="2"))["drift"]
    assert (of_two["summary_file"], of_two["drifted_columns"]) == ("monitoring-20261120T000000Z.json", ["x"])
    assert panels(["drift"], here, selection(version="3"))["drift"]["state"] == "empty"
    assert panels(["drift"], Sources(model_name="penguins"), selection())["drift"]["state"] == "off"


def test_one_hundred_thousand_predictions_are_counted_in_sql(url: str) -> None:
    log_rows(url, [])  # creates the table and its indexes
    path = url.removeprefix("sqlite:///")
    rows = [
        (str(T0 + timedelta(seconds=6 * i)), f"r{i}", "penguins", "2", "service", "{}", json.dumps(CLASSES[i % 3]), None)
        for i in range(100_000)
    ]
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO predictions (logged_at, request_id, model_name, model_version, source, features, prediction, probabilities)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    write_labels(url, [(f"r{i}", "Adelie") for i in range(0, 100_000, 10)])  # r0, r10, ...: i % 3 == 0 for a third
    found = panels(["volume", "predictions", "labels"], sources(url), selection())
    assert found["volume"]["total"] == 100_000 and sum(sum(s["counts"]) for s in found["volume"]["series"]) == 100_000
    assert found["volume"]["bucket_seconds"] == 3 * 3600 and len(found["volume"]["bucket_starts"]) == 56  # 6.9 days
    assert [item["count"] for item in found["predictions"]["classes"]] == [33_334, 33_333, 33_333]
    assert found["labels"]["labelled_total"] == 10_000 and sum(found["labels"]["correct"]) == 3_334


def test_a_row_just_before_a_bucket_edge_stays_in_its_bucket(url: str) -> None:
    # SQLite's strftime('%s') rounds 12:04:59.9999 up to 12:05:00: the bucket index is taken from whole seconds
    log_rows(url, [("a", "2", "Adelie", T0), ("b", "2", "Adelie", T0 + timedelta(minutes=4, seconds=59.9999))])
    volume = panels(["volume"], sources(url), selection())["volume"]
    assert volume["bucket_seconds"] == 60 and volume["series"][0]["counts"] == [1, 0, 0, 0, 1]


def test_a_window_back_from_now_leaves_out_predictions_logged_in_the_future(url: str) -> None:
    log_rows(url, [("now", "2", "Adelie", NOW - timedelta(minutes=5)), ("ahead", "2", "Adelie", NOW + timedelta(days=400))])
    assert panels(["volume"], sources(url), selection(window="24h"))["volume"]["total"] == 1
    assert panels(["volume"], sources(url), selection())["volume"]["total"] == 2  # `all` has no end


def test_the_latest_row_of_a_request_id_is_taken_within_the_model_and_window(url: str) -> None:
    log_rows(url, [("r1", "2", "Adelie", T0), ("r2", "2", "Adelie", T0)])
    log_rows(url, [("r1", "9", "Gentoo", T0 + timedelta(days=1))], model_name="otter")  # another model reuses r1
    log_rows(url, [("r2", "2", "Gentoo", T0 + timedelta(days=2))])  # r2 answered again, after `until`
    write_labels(url, [("r1", "Adelie"), ("r2", "Adelie")])
    labelled = panels(["labels"], sources(url), selection(until="2026-11-21T12:00:00"))["labels"]
    assert (labelled["labelled_total"], labelled["accuracy_total"]) == (2, 1.0)
    assert panels(["labels"], sources(url), selection())["labels"]["accuracy_total"] == 0.5  # r2's latest is wrong


def test_the_histogram_counts_numbers_only_and_says_how_many_were_not(url: str) -> None:
    log_rows(url, [("a", "2", float("nan"), T0), ("b", "2", None, T0), ("c", "2", "abc", T0), ("d", "2", 10.0, T0), ("e", "2", -5.0, T0)])
    histogram = panels(["predictions"], sources(url, card("2", "regression", "rmse")), selection())["predictions"]
    assert (histogram["total"], histogram["not_numeric"], histogram["mean"]) == (5, 3, 2.5)
    assert histogram["counts"][0] == 1 and histogram["counts"][-1] == 1 and sum(histogram["counts"]) == 2
    log_rows(url, [("f", "2", 1e308, T0), ("g", "2", -1e308, T0)])  # a span beyond the largest float
    extreme = panels(["predictions"], sources(url, card("2", "regression", "rmse")), selection())["predictions"]
    assert sum(extreme["counts"]) == 4 and extreme["counts"][0] == 1 and extreme["counts"][-1] == 1


def test_write_labels_skips_what_no_prediction_can_have(url: str, caplog: pytest.LogCaptureFixture) -> None:
    log_rows(url, [("a", "2", 1.0, T0)])
    stored = write_labels(url, [("a", 2.0), ("x" * 65, 1.0), ("", 1.0), ("b", float("nan")), ("c", None)])
    assert stored == 1
    assert "labels: 4 pairs skipped: no label, or a request id no prediction has (1 to 64 characters)" in caplog.text
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        assert connection.execute("SELECT request_id, label FROM labels").fetchall() == [("a", "2.0")]


def test_an_unreadable_registry_card_is_the_model_panels_problem_only(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_bundle_card(models, "1")
    (models / "penguins" / "1" / "metrics.json").write_text("{broken")
    found = panels(["model", "drift"], Sources(model_name="penguins", models=models), selection(version="1"))
    assert found["model"]["state"] == "unavailable"
    assert found["model"]["message"].startswith("bundle 1: cannot read its card: Expecting property name")
    assert found["drift"]["state"] == "off"


def test_odd_summary_files_are_read_without_failing(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    write_summary(reports, "20261121T000000Z", drifted_columns=5, drift_share=float("nan"), per_column=[1], threshold="x")
    write_summary(reports, "20261121T000000Z-2", per_column={"x": {"test": "K-S", "score": "high", "threshold": None, "drifted": 1}})
    found = panels(["drift"], Sources(model_name="penguins", reports=reports), selection())["drift"]
    assert found["summary_file"] == "monitoring-20261121T000000Z-2.json"  # the second run of that second
    assert found["per_column"] == {"x": {"test": "K-S", "score": None, "threshold": None, "drifted": True}}
    (reports / "monitoring-20261121T000000Z-2.json").unlink()
    first = panels(["drift"], Sources(model_name="penguins", reports=reports), selection())["drift"]
    assert (first["drifted_columns"], first["drift_share"], first["per_column"], first["threshold"]) == ([], None, {}, None)


def test_the_latest_row_is_the_latest_logged_not_the_last_written(url: str) -> None:
    log_rows(url, [("r1", "2", "Gentoo", T0 + timedelta(hours=1))])  # written first, logged later: the answer that counts
    log_rows(url, [("r1", "2", "Adelie", T0)])  # written later by another worker, logged earlier
    write_labels(url, [("r1", "Adelie")])
    assert panels(["labels"], sources(url), selection())["labels"]["accuracy_total"] == 0.0


def test_regression_actual_vs_predicted_leaves_out_predictions_that_are_not_numbers(url: str) -> None:
    log_rows(url, [("a", "2", None, T0), ("b", "2", 5.0, T0)])
    write_labels(url, [("a", 1.0), ("b", 7.0)])
    labelled = panels(["labels"], sources(url, card("2", "regression", "rmse")), selection())["labels"]
    assert (labelled["labelled_total"], labelled["predicted_mean"], labelled["actual_mean"]) == (1, [5.0], [7.0])
    log_rows(url, [("c", "3", None, T0)])
    nothing = panels(["predictions"], sources(url, card("2", "regression", "rmse")), selection(version="3"))["predictions"]
    assert nothing == {"state": "empty", "message": "none of the 1 predictions in this window is a number"}


def test_the_task_follows_the_selected_version(tmp_path: Path, url: str) -> None:
    models = tmp_path / "models"
    write_bundle_card(models, "1")  # classification
    log_rows(url, [("a", "1", "Adelie", T0), ("b", "2", 3.5, T0)])
    here = sources(url, card("2", "regression", "rmse"), models=models)
    assert panels(["predictions"], here, selection(version="1"))["predictions"]["classes"][0]["class"] == "Adelie"
    assert panels(["predictions"], here, selection(version="2"))["predictions"]["task"] == "regression"
    unknown = panels(["predictions"], here, selection(version="9"))["predictions"]  # not in the registry: as logged
    assert unknown == {"state": "empty", "message": "no predictions of version 9 logged yet"}


def forecast_card(version: str) -> BundleInfo:
    info = card(version, task="forecasting", metric="mase")
    info.card["forecast"] = {"frequency": "1D", "horizon": 2, "interval": 0.9, "series": ["DEFAULT", "LLAP"]}
    return info


def log_forecast(url: str, rows: list[tuple[str, str, float, datetime]]) -> None:
    """(series, period it is for, forecast, logged_at) rows as POST /forecast logs them."""
    with PredictionLog(url) as log:
        log.write(
            [
                LoggedPrediction("plan", "penguins", "7", {"series": name, "timestamp": period, "step": 1, "forecast_lower": value - 1, "forecast_upper": value + 1}, value, logged_at=at)
                for name, period, value, at in rows
            ]
        )


def test_the_forecast_panel_draws_the_newest_forecast_of_each_period_beside_the_actuals(url: str) -> None:
    log_forecast(
        url,
        [
            ("LLAP", "2026-11-21T00:00:00", 10.0, T0),
            ("LLAP", "2026-11-22T00:00:00", 11.0, T0),
            ("LLAP", "2026-11-21T00:00:00", 12.5, T0 + timedelta(hours=1)),  # forecast again later: this one is shown
            ("DEFAULT", "2026-11-21T00:00:00+02:00", 3.0, T0),  # an offset is put in naive UTC
        ],
    )
    actuals = {"LLAP": (["2026-11-20T00:00:00"], [9.0]), "TEZ": (["2026-11-20T00:00:00"], [1.0])}
    found = panels(list(FORECAST_PANELS), sources(url, forecast_card("7"), actuals=actuals), selection())
    forecast = found["forecast"]
    assert (forecast["state"], forecast["message"], forecast["series_total"], forecast["series_left_out"]) == ("ok", "4 logged forecast points", 3, [])
    assert forecast["series"] == [
        {"series": "DEFAULT", "timestamps": ["2026-11-20T22:00:00"], "forecast": [3.0], "forecast_lower": [2.0], "forecast_upper": [4.0], "actual_timestamps": [], "actual": []},
        {
            "series": "LLAP",
            "timestamps": ["2026-11-21T00:00:00", "2026-11-22T00:00:00"],
            "forecast": [12.5, 11.0],
            "forecast_lower": [11.5, 10.0],
            "forecast_upper": [13.5, 12.0],
            "actual_timestamps": ["2026-11-20T00:00:00"],
            "actual": [9.0],
        },
        {"series": "TEZ", "timestamps": [], "forecast": [], "forecast_lower": [], "forecast_upper": [], "actual_timestamps": ["2026-11-20T00:00:00"], "actual": [1.0]},
    ]
    assert found["model"]["forecast"] == {"frequency": "1D", "horizon": 2, "interval": 0.9, "series": ["DEFAULT", "LLAP"], "history_end": {}}
    assert found["volume"]["state"] == "ok"


def test_the_forecast_panel_names_the_series_it_does_not_draw(url: str) -> None:
    names = [f"Q{index:02d}" for index in range(MAX_SERIES + 2)]
    log_forecast(url, [(name, "2026-11-21T00:00:00", 1.0, T0) for name in names])
    forecast = panels(["forecast"], sources(url, forecast_card("7")), selection())["forecast"]
    assert [entry["series"] for entry in forecast["series"]] == names[:MAX_SERIES]
    assert forecast["series_left_out"] == names[MAX_SERIES:]


def test_the_forecast_and_the_tabular_panels_are_off_for_the_other_kind_of_model(url: str) -> None:
    tabular = panels(["forecast"], sources(url), selection())["forecast"]
    assert tabular == {"state": "off", "message": "the forecast panel is for a forecasting model (data.task: forecasting)"}
    forecasting = panels(["predictions", "labels", "drift"], sources(url, forecast_card("7")), selection())
    assert {name: panel["state"] for name, panel in forecasting.items()} == {"predictions": "off", "labels": "off", "drift": "off"}
    assert forecasting["labels"]["message"] == "the labels panel is for tabular models; this one forecasts series"


def test_the_forecast_panel_shows_the_actuals_when_nothing_is_logged(url: str) -> None:
    actuals = {"LLAP": (["2026-11-20T00:00:00"], [9.0])}
    none_logged = panels(["forecast"], sources(None, forecast_card("7"), actuals=actuals), selection())["forecast"]
    assert none_logged["state"] == "empty" and [entry["actual"] for entry in none_logged["series"]] == [[9.0]]
    missing = panels(["forecast"], sources(url, forecast_card("7"), actuals=actuals), selection())["forecast"]
    assert missing["state"] == "empty" and missing["message"].startswith("no forecasts logged yet: no prediction log at")
