"""The CSV tools: values against direct pandas, schemas for every provider, tool errors."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from workbench.core.csv_agent import tools
from workbench.core.csv_agent.render import json_safe, render_result
from workbench.core.csv_agent.tools import Frames, run_tool

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "csv"
needs_csv = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/datasets/csv is absent")


def _frames(name: str) -> Frames:
    return Frames(pd.read_csv(SHARED / f"{name}.csv"))


def _table(result: dict) -> pd.DataFrame:
    assert result["kind"] == "table", result
    return pd.DataFrame(result["rows"], columns=result["columns"])


@needs_csv
def test_diamonds_mean_price_by_cut_matches_pandas() -> None:
    frames = _frames("diamonds")
    got = _table(run_tool(frames, "groupby_agg", {"by": ["cut"], "column": "price", "agg": "mean"}))
    want = frames.get("df").groupby("cut")["price"].mean()
    assert dict(zip(got["cut"], got["mean_price"], strict=True)) == pytest.approx(want.to_dict())


@needs_csv
def test_titanic_survival_by_class_through_a_saved_frame() -> None:
    frames = _frames("titanic")
    df = frames.get("df")
    r = run_tool(
        frames,
        "filter",
        {"conditions": [{"column": "sex", "op": "==", "value": "female"}], "save_as": "women"},
    )
    assert r["n_rows"] == int((df["sex"] == "female").sum())
    got = _table(
        run_tool(
            frames,
            "groupby_agg",
            {"by": ["pclass"], "column": "survived", "agg": "mean", "frame": "women"},
        )
    )
    want = df[df["sex"] == "female"].groupby("pclass")["survived"].mean()
    assert list(got["mean_survived"]) == pytest.approx(list(want))


@needs_csv
def test_penguins_nans_become_null_and_stats_skip_them() -> None:
    frames = _frames("penguins")
    df = frames.get("df")
    head = run_tool(frames, "head", {"n": 5})
    assert head["rows"][3][2] is None  # row 4 has no measurements
    assert "NaN" in render_result(head)
    q = run_tool(frames, "quantile", {"column": "body_mass_g", "q": 0.5})
    assert q == {"kind": "value", "value": df["body_mass_g"].median()}
    nulls = run_tool(frames, "filter", {"conditions": [{"column": "sex", "op": "isnull"}]})
    assert nulls["n_rows"] == int(df["sex"].isna().sum())
    corr = run_tool(frames, "correlation", {"a": "bill_length_mm", "b": "flipper_length_mm"})
    assert corr["value"] == pytest.approx(df["bill_length_mm"].corr(df["flipper_length_mm"]))
    spear = run_tool(
        frames,
        "correlation",
        {"a": "bill_length_mm", "b": "flipper_length_mm", "method": "spearman"},
    )
    both = df[["bill_length_mm", "flipper_length_mm"]].dropna().rank()
    assert spear["value"] == pytest.approx(both.corr().iloc[0, 1])


@needs_csv
def test_every_tool_runs_on_every_shared_table() -> None:
    for path in sorted(SHARED.glob("*.csv")):
        frames = Frames(pd.read_csv(path))
        df = frames.get("df")
        numeric = next(c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]))
        text = next((c for c in df.columns if df[c].dtype == object), numeric)
        calls = {
            "schema": {},
            "head": {"n": 3},
            "sample": {"n": 3, "seed": 1},
            "describe": {"column": numeric},
            "value_counts": {"column": text, "top": 3},
            "filter": {"conditions": [{"column": numeric, "op": "notnull"}]},
            "groupby_agg": {"by": [text], "column": numeric, "agg": "count"},
            "sort_top": {"column": numeric, "k": 3},
            "correlation": {"a": numeric, "b": numeric},
            "crosstab": {"a": text, "b": text},
            "quantile": {"column": numeric, "q": 0.9},
            "compute": {"expression": f"mean(col({numeric!r}))"},
        }
        assert set(calls) == set(tools.TOOLS)
        for name, args in calls.items():
            result = run_tool(frames, name, args)
            assert not result.get("is_error"), (path.name, name, result)
        mean = run_tool(frames, "compute", calls["compute"])["value"]
        assert mean == pytest.approx(df[numeric].mean())


def test_schemas_are_derived_from_signatures_and_docstrings() -> None:
    spec = tools.TOOL_SCHEMAS["groupby_agg"]
    params = spec["parameters"]
    assert spec["description"].startswith("Group rows")
    assert params["required"] == ["by", "column", "agg"]
    assert params["properties"]["by"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "the columns to group by.",
    }
    assert params["properties"]["agg"]["enum"] == [
        "count", "sum", "mean", "median", "min", "max", "std", "nunique"
    ]  # fmt: skip
    assert params["properties"]["frame"]["default"] == "df"
    op = tools.TOOL_SCHEMAS["filter"]["parameters"]["properties"]["conditions"]["items"]
    assert "between" in op["properties"]["op"]["enum"]
    assert all(
        s["description"] and s["parameters"]["type"] == "object"
        for s in tools.TOOL_SCHEMAS.values()
    )


TIPS = pd.DataFrame({"price": [1.0, 2.0], "day": ["Sun", "Mon"]})


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("filter", {"conditions": [{"column": "Price", "op": ">", "value": 1}]},
         "column 'Price' does not exist; did you mean 'price'?"),
        ("filter", {"conditions": [{"column": "price", "op": "~=", "value": 1}]},
         "op '~=' is not allowed"),
        ("sort_top", {"column": "price", "k": 10**9}, "k must be between 1 and 1000"),
        ("head", {"frame": "f3"}, "frame 'f3' does not exist"),
        ("groupby_agg", {"by": ["day"], "column": "price", "agg": "mode"},
         "agg 'mode' is not allowed"),
        ("head", {"n": "5"}, "head: n must be integer, not str"),
        ("head", {"rows": 5}, "head: unknown argument 'rows'"),
        ("describe", {}, "describe: missing argument 'column'"),
        ("pivot", {}, "unknown tool 'pivot'"),
        ("head", "[1, 2]", "head: arguments must be a JSON object"),
        ("filter", {"conditions": [{"column": "day", "op": "contains", "value": "(["}]},
         "invalid regular expression"),
        ("describe", {"column": "we'ird`\nname ü"}, "column 'we'ird`\\nname ü' does not exist"),
        ("filter", {"conditions": [{"column": "price", "op": ">", "value": 1}], "save_as": "df"},
         "save_as 'df' must be a new name"),
        ("compute", {"expression": "__class__"}, "name '__class__' is not allowed"),
        ("compute", {"expression": "().__class__.__bases__"}, "Attribute is not allowed"),
        ("compute", {"expression": "__import__('os')"}, "calling '__import__' is not allowed"),
        ("compute", {"expression": "price.sum()"}, "Attribute is not allowed"),
        ("compute", {"expression": "(lambda: 1)()"}, "Lambda is not allowed"),
        ("compute", {"expression": "[x for x in price]"}, "ListComp is not allowed"),
        ("compute", {"expression": "price[0]"}, "Subscript is not allowed"),
        ("compute", {"expression": "open('x')"}, "calling 'open' is not allowed"),
        ("compute", {"expression": "price +"}, "expression does not parse"),
        ("compute", {"expression": "mean(price)", "save_as": "f1"}, "save_as needs a per-row"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line_tool_errors(name: str, args: object, message: str) -> None:
    frames = Frames(TIPS)
    result = run_tool(frames, name, args)
    assert result["is_error"] is True and result["error_kind"] == "invalid_args", result
    assert message in result["error"] and "\n" not in result["error"]
    assert set(frames.frames) == {"df"}


def test_frames_are_capped_in_number() -> None:
    frames = Frames(TIPS, max_frames=3)
    cond = {"conditions": [{"column": "price", "op": ">", "value": 0}]}
    assert not run_tool(frames, "filter", {**cond, "save_as": "a"}).get("is_error")
    assert not run_tool(frames, "filter", {**cond, "save_as": "b"}).get("is_error")
    third = run_tool(frames, "filter", {**cond, "save_as": "c"})
    assert third["is_error"] and "at most 3 frames" in third["error"]


def test_compute_per_row_saves_a_frame_and_aggregates_give_values() -> None:
    frames = Frames(TIPS)
    r = run_tool(
        frames, "compute", {"expression": "price * 2 > 3", "save_as": "f", "column": "big"}
    )
    assert r["rows"] == [[False], [True]]
    assert list(frames.get("f")["big"]) == [False, True]
    assert run_tool(frames, "compute", {"expression": "round(mean(price) / 3, 2)"})["value"] == 0.5


def test_json_safe_values() -> None:
    import numpy as np

    assert json_safe([math.nan, math.inf, -math.inf, np.int64(3), np.float32(0.5), np.bool_(True)]) == [
        None, "inf", "-inf", 3, 0.5, True
    ]  # fmt: skip
    assert type(json_safe(np.float64(0.5))) is float and type(json_safe(np.str_("a"))) is str
    assert json_safe(pd.Timestamp("2024-01-02")) == "2024-01-02T00:00:00"
    assert json_safe({"a": pd.NA, 1: pd.NaT}) == {"a": None, "1": None}


def test_hostile_column_names_work_as_plain_names(tmp_path: Path) -> None:
    """Quotes, backticks, newlines and unicode in names: never evaluated, only looked up."""
    from workbench.core.csv_agent.tables import read_table

    path = tmp_path / "odd.csv"
    path.write_text('"it\'s","`x`","a\nb","größe ü"\n1,2,3,4\n5,6,7,8\n', encoding="utf-8")
    frames = Frames(read_table(path).frame)
    assert list(frames.get("df").columns) == ["it's", "`x`", "a\nb", "größe ü"]
    r = run_tool(
        frames,
        "filter",
        {"conditions": [{"column": "a\nb", "op": ">", "value": 3}], "save_as": "f"},
    )
    assert r["n_rows"] == 1
    g = run_tool(frames, "groupby_agg", {"by": ["`x`"], "column": "größe ü", "agg": "sum"})
    assert g["rows"] == [[2, 4], [6, 8]]
    c = run_tool(frames, "compute", {"expression": "col(\"it's\") + col('`x`')"})
    assert c["rows"] == [[3], [11]]
    shown = render_result(run_tool(frames, "head", {"n": 1}))
    assert "a\\nb" in shown  # one line per row, whatever the names hold
    bad = run_tool(frames, "describe", {"column": "it`s"})
    assert (
        bad["is_error"]
        and "did you mean 'it\\'s'?" not in bad["error"]
        and "\n" not in bad["error"]
    )
