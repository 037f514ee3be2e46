"""The dashboard's charts as plotly.js figures (data + layout), drawn in the browser by the vendored plotly.js.

`figures(found)` takes the panels' data (`ml_project.dashboard.panels`) and returns a figure per chart
element id of the page (deployment/templates/dashboard.html); deployment/dashboard_api.py renders them.
Plain data in, plain data out: no I/O, no imports beyond the standard library.
"""

from __future__ import annotations

from typing import Any

COLORS = {"accent": "#2f6fb3", "second": "#d9822b", "ok": "#2e8540", "alert": "#c0392b"}


def figures(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """plotly.js figures (data + layout) by chart element id, for the panels that have something to draw."""
    charts: dict[str, dict[str, Any]] = {}
    model, volume, predicted, labelled = found["model"], found["volume"], found.get("predictions", {}), found.get("labels", {})
    if model.get("state") == "ok" and model.get("leaderboard"):
        charts["chart-leaderboard"] = _leaderboard_figure(model)
    if volume.get("state") == "ok":
        charts["chart-volume"] = _volume_figure(volume)
    if predicted.get("state") == "ok":
        charts["chart-predictions"] = _predictions_figure(predicted)
    if labelled.get("state") == "ok":
        charts["chart-labels"] = _labels_figure(labelled)
    for index, series in enumerate(found.get("forecast", {}).get("series") or []):
        charts[f"chart-forecast-{index}"] = _forecast_figure(series)
    return charts


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "height": 320,
        "legend": {"orientation": "h", "y": -0.25},
        **extra,
    }


def _leaderboard_figure(model: dict[str, Any]) -> dict[str, Any]:
    """Mean and spread over the CV folds of the top trials: dots with error bars, so close scores stay apart."""
    metric = model["metric"]
    rows = [row for row in model["leaderboard"] if row.get(f"mean_{metric}") is not None]
    better = "higher" if model["greater_is_better"] else "lower"
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "y": [f"#{row.get('rank')} {row.get('algorithm')}" for row in rows],
                "x": [row[f"mean_{metric}"] for row in rows],
                "error_x": {"type": "data", "array": [row.get(f"std_{metric}") or 0 for row in rows], "visible": True},
                "hovertext": [f"trial {row.get('trial')}: {row.get('params')}" for row in rows],
                "hovertemplate": "%{y}<br>%{x:.4f}<br>%{hovertext}<extra></extra>",
                "marker": {"color": COLORS["accent"], "size": 9},
            }
        ],
        "layout": _layout(
            f"leaderboard: cross-validated {metric} ({better} is better)",
            f"mean {metric} ± std over the folds",
            "",
            yaxis={"autorange": "reversed", "automargin": True},
        ),
    }


def _volume_figure(volume: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": [
            {"type": "bar", "name": f"version {series['model_version']}", "x": volume["bucket_starts"], "y": series["counts"]}
            for series in volume["series"]
        ],
        "layout": _layout(
            f"{volume['total']} predictions, per {_duration(volume['bucket_seconds'])}",
            "logged at (UTC)",
            "predictions",
            barmode="stack",
        ),
    }


def _predictions_figure(predicted: dict[str, Any]) -> dict[str, Any]:
    if predicted["task"] == "regression":
        edges = predicted["edges"]
        centers = [(low + high) / 2 for low, high in zip(edges, edges[1:])]
        width = edges[1] - edges[0] if len(edges) > 1 else 1.0
        data = [{"type": "bar", "x": centers, "y": predicted["counts"], "width": width, "marker": {"color": COLORS["accent"]}}]
        skipped = f", {predicted['not_numeric']} not numbers" if predicted.get("not_numeric") else ""
        title = f"predicted values (mean {number(predicted['mean'], '%.4g')}{skipped})"
        return {"data": data, "layout": _layout(title, "prediction", "predictions", bargap=0)}
    classes = predicted["classes"]
    data = [
        {
            "type": "bar",
            "x": [item["class"] for item in classes],
            "y": [item["count"] for item in classes],
            "text": [f"{item['share']:.1%}" for item in classes],
            "textposition": "auto",
            "marker": {"color": COLORS["accent"]},
        }
    ]
    return {"data": data, "layout": _layout("class mix of the predictions", "predicted class", "predictions")}


def _labels_figure(labelled: dict[str, Any]) -> dict[str, Any]:
    times = labelled["bucket_starts"]
    per = _duration(labelled["bucket_seconds"])
    if labelled["task"] == "regression":
        data = [
            {"type": "scatter", "mode": "lines+markers", "name": "actual (mean)", "x": times, "y": labelled["actual_mean"], "connectgaps": False, "line": {"color": COLORS["ok"]}},
            {"type": "scatter", "mode": "lines+markers", "name": "predicted (mean)", "x": times, "y": labelled["predicted_mean"], "connectgaps": False, "line": {"color": COLORS["accent"]}},
        ]
        title = f"actual vs predicted per {per} ({labelled['labelled_total']} labelled, MAE {labelled['mae_total']:.4g})"
        return {"data": data, "layout": _layout(title, "logged at (UTC)", "value")}
    data = [
        {"type": "scatter", "mode": "markers", "name": f"accuracy per {per}", "x": times, "y": labelled["accuracy"], "marker": {"color": COLORS["second"]}},
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"rolling accuracy ({labelled['rolling_buckets']} buckets)",
            "x": times,
            "y": labelled["rolling_accuracy"],
            "line": {"color": COLORS["accent"]},
        },
    ]
    title = f"accuracy where labels arrived ({labelled['labelled_total']} labelled: {labelled['accuracy_total']:.1%})"
    return {"data": data, "layout": _layout(title, "logged at (UTC)", "accuracy", yaxis={"range": [0, 1.05], "title": {"text": "accuracy"}})}


def _forecast_figure(series: dict[str, Any]) -> dict[str, Any]:
    """One series: the interval as a shaded band, the forecast line, the actuals as dots, by the period they are for."""
    times = series["timestamps"]
    band = [
        {"type": "scatter", "mode": "lines", "name": "forecast upper", "x": times, "y": series["forecast_upper"], "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"},
        {
            "type": "scatter",
            "mode": "lines",
            "name": "interval",
            "x": times,
            "y": series["forecast_lower"],
            "fill": "tonexty",
            "fillcolor": "rgba(47,111,179,0.18)",
            "line": {"width": 0},
        },
    ]
    data = [
        *(band if times else []),
        {"type": "scatter", "mode": "lines+markers", "name": "forecast", "x": times, "y": series["forecast"], "line": {"color": COLORS["accent"]}},
        {"type": "scatter", "mode": "lines+markers", "name": "actual", "x": series["actual_timestamps"], "y": series["actual"], "line": {"color": COLORS["ok"]}, "marker": {"size": 4}},
    ]
    title = f"{series['series']}: {len(times)} periods forecast, {len(series['actual'])} actuals"
    return {"data": data, "layout": _layout(title, "period forecast for (UTC)", "value")}


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"



def number(value: Any, spec: str = "%.4f") -> str:
    """A number as the page prints it; anything else (a metric that is None, say) as "n/a"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else ""
    return spec % value

