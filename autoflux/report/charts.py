"""Charts: Vega-Lite specs, rendered in the page by Vega-Embed, whose bundle is inlined.

The bundle (Vega, Vega-Lite and Vega-Embed, about 0.9 MB) comes from ``vl-convert-python``, which
ships the libraries and bundles them offline; bundling takes seconds, so the result is cached per
vl-convert version under ``$XDG_CACHE_HOME/autoflux`` (``~/.cache/autoflux``).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from autoflux.exceptions import MissingDependencyError
from autoflux.files import user_cache_dir, write_text

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
WIDTH, HEIGHT = 200, 56
TRAIN, TEST = "#4c78a8", "#f58518"


def javascript_bundle() -> str:
    """Vega + Vega-Lite + Vega-Embed as one script defining ``window.vegaEmbed`` (cached)."""
    try:
        version = metadata.version("vl-convert-python")
    except metadata.PackageNotFoundError:
        raise MissingDependencyError("the report's charts", extra="report", package="vl-convert-python") from None
    path = user_cache_dir() / f"vega-embed-vl-convert-{version}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    try:
        write_text(path, bundle)
    except OSError:
        pass  # a read-only home: bundle again next time
    return bundle


def _base(**extra: Any) -> dict[str, Any]:
    return {"$schema": SCHEMA, "width": WIDTH, "height": HEIGHT, "config": {"view": {"stroke": None}}, **extra}


def histogram(bins: list[dict[str, Any]], *, title: str | None = None) -> dict[str, Any]:
    """Bars over ``[{"x0", "x1", "n"}]`` (equal-width bins)."""
    return _base(
        data={"values": bins},
        mark={"type": "bar", "color": TRAIN, "tooltip": True},
        encoding={
            "x": {
                "field": "x0",
                "type": "quantitative",
                "bin": {"binned": True},
                "title": title,
                "axis": {"labelFontSize": 9, "tickCount": 4},
            },
            "x2": {"field": "x1"},
            "y": {"field": "n", "type": "quantitative", "title": None, "axis": {"labelFontSize": 9, "tickCount": 3}},
        },
    )


def top_values(values: list[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars of ``[{"value", "n"}]``, commonest first."""
    return _base(
        height={"step": 11},
        data={"values": [{"value": str(v["value"]), "n": v["n"]} for v in values]},
        mark={"type": "bar", "color": TRAIN, "tooltip": True},
        encoding={
            "y": {"field": "value", "type": "nominal", "sort": "-x", "title": None, "axis": {"labelFontSize": 9, "labelLimit": 90}},
            "x": {"field": "n", "type": "quantitative", "title": None, "axis": {"labelFontSize": 9, "tickCount": 3}},
        },
    )


def overlaid(bins: list[dict[str, Any]], *, title: str) -> dict[str, Any]:
    """Train and test shares per bin, overlaid: ``[{"x0", "x1", "split", "share"}]`` or ``[{"value", "split", "share"}]``."""
    color = {
        "field": "split",
        "type": "nominal",
        "scale": {"domain": ["train", "test"], "range": [TRAIN, TEST]},
        "legend": {"orient": "top", "title": None},
    }
    y = {"field": "share", "type": "quantitative", "title": "share of rows", "stack": None, "axis": {"format": "%", "labelFontSize": 9}}
    if bins and "x0" in bins[0]:
        encoding = {"x": {"field": "x0", "type": "quantitative", "bin": {"binned": True}, "title": title}, "x2": {"field": "x1"}}
    else:
        encoding = {"x": {"field": "value", "type": "nominal", "title": title, "axis": {"labelLimit": 80}}}
    return _base(
        width=260,
        height=110,
        data={"values": bins},
        mark={"type": "bar", "opacity": 0.55, "tooltip": True},
        encoding=encoding | {"y": y, "color": color},
    )
