"""The interface's pages as Dash components, and the history and marginal figures.

Pure functions of the data they are given: the callbacks in
:mod:`sklearn_epi.ui._app` read the runs and pass them here.
"""

from __future__ import annotations

import math
from urllib.parse import quote

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dash_table, dcc, html
from plotly.subplots import make_subplots

from ._catalog import COLUMNS

#: The page's style: readable, no framework, nothing fetched.
CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #f7f7f9; }
.nav { background: #27364a; padding: 10px 24px; }
.nav a { color: #fff; margin-right: 24px; text-decoration: none; font-weight: 600; }
.page { max-width: 1500px; margin: 0 auto; padding: 12px 24px 48px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px;
        margin: 12px 0; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.status { font-weight: 600; padding: 2px 8px; border-radius: 4px; background: #e8edf3; }
.error { color: #a40000; white-space: pre-wrap; font-weight: 600; }
.ok { color: #1d6b2b; font-weight: 600; }
pre.log { background: #222; color: #ddd; padding: 8px; max-height: 240px; overflow: auto;
          font-size: 12px; }
table.simple { border-collapse: collapse; font-size: 14px; }
table.simple td, table.simple th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.simple th { background: #eef1f5; }
.form label { display: block; font-weight: 600; }
.form textarea { width: 560px; height: 70px; font-family: monospace; }
.form fieldset { border: 1px solid #ddd; border-radius: 6px; margin: 10px 0; background: #fff;
                 display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr));
                 gap: 4px 24px; }
button { padding: 6px 14px; margin-right: 8px; border-radius: 4px; border: 1px solid #27364a;
         background: #27364a; color: #fff; cursor: pointer; }
button:disabled { background: #aaa; border-color: #aaa; cursor: default; }
img.figure { max-width: 100%; border: 1px solid #ddd; background: #fff; }
"""

INDEX = (
    "<!DOCTYPE html><html><head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}"
    "<style>" + CSS + "</style></head><body>{%app_entry%}<footer>{%config%}{%scripts%}"
    "{%renderer%}</footer></body></html>"
)


def frame() -> html.Div:
    """The layout every page shares: navigation, the page's content, the URL."""
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div(
                [
                    dcc.Link("Runs", href="/"),
                    dcc.Link("Compare", href="/compare"),
                    dcc.Link("New fit", href="/new"),
                ],
                className="nav",
            ),
            html.Div(id="page", className="page"),
        ]
    )


def run_link(name: str) -> str:
    return f"/run/{quote(name)}"


def runs_page() -> list:
    """Every run as a sortable, filterable table; rows selected for comparison."""
    columns = [{"name": c.replace("_", " "), "id": c} for c in COLUMNS]
    columns[0]["presentation"] = "markdown"
    return [
        html.H1("EPI runs"),
        dcc.Interval(id="runs-interval", interval=3000),
        html.Div(
            [
                html.Button("Compare selected", id="compare-button"),
                html.Span(id="runs-count"),
            ],
            className="card",
        ),
        dash_table.DataTable(
            id="runs-table",
            columns=columns,
            data=[],
            sort_action="native",
            filter_action="native",
            row_selectable="multi",
            selected_row_ids=[],
            page_action="none",
            style_table={"overflowX": "auto"},
            style_cell={"fontFamily": "system-ui, sans-serif", "fontSize": 13, "padding": "4px"},
            style_cell_conditional=[
                {"if": {"column_id": c}, "maxWidth": 260, "whiteSpace": "normal"}
                for c in ("flow", "al_params", "statistic")
            ],
            style_header={"backgroundColor": "#eef1f5", "fontWeight": "bold"},
            style_data_conditional=[
                {"if": {"filter_query": '{status} contains "unreadable"'}, "color": "#a40000"},
                {"if": {"filter_query": "{status} = running"}, "backgroundColor": "#fff6d6"},
            ],
            markdown_options={"link_target": "_self"},
        ),
    ]


def table_rows(rows: list) -> list:
    """The runs table's data: the run's name as a link to its page."""
    return [{**row, "run": f"[{row['run']}]({run_link(row['run'])})"} for row in rows]


def run_page(name: str, launched: bool) -> list:
    """A run's page; its parts are filled, and refreshed, by callbacks."""
    return [
        html.H1(f"Run {name}"),
        dcc.Store(id="run-name", data=name),
        dcc.Store(id="fit-stamp"),
        dcc.Interval(id="run-interval", interval=2000),
        html.Div(
            [
                html.Span("status: "),
                html.Span(id="run-status", className="status"),
                html.Span(" · "),
                html.Span(id="epoch-count"),
                html.Div(
                    [
                        html.Button("Stop", id="stop-button", disabled=True),
                        html.Button("Resume", id="resume-button", disabled=True),
                        html.Span(id="action-message"),
                    ],
                    style={"marginTop": "8px"},
                    hidden=not launched,
                ),
            ],
            className="card",
        ),
        html.Div(id="run-summary"),
        html.H2("History"),
        dcc.Graph(id="history-graph", config={"displaylogo": False}),
        html.Pre(id="run-log", className="log", hidden=True),
        html.Div(id="fitted-section"),
    ]


def simple_table(frame: pd.DataFrame, index: bool = True, id=None) -> html.Table:
    """A plain HTML table of a small DataFrame, numbers to four significant digits."""
    header = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    body = [
        html.Tr(([html.Th(str(i))] if index else []) + [html.Td(_number(v)) for v in row.tolist()])
        for i, row in frame.iterrows()
    ]
    table = html.Table([html.Tr([html.Th(h) for h in header]), *body], className="simple")
    if id is not None:
        table.id = id
    return table


def _number(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def history_figure(history: pd.DataFrame, constraints: list, alpha_m: float) -> go.Figure:
    """Entropy, cost, c, p-values and every constraint violation against iterations.

    Lines are the training rows, markers the epoch-end tests; one colour per seed.
    """
    titles = ["entropy H", "cost", "penalty c", "smallest p-value"]
    titles += [f"violation R {name}" for name in constraints]
    cols = 3
    rows = max(1, math.ceil(len(titles) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=0.12)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    panels = [("H", "H"), ("cost", None), ("c", "c"), (None, "p")]
    panels += [(f"R_{n}", f"R_{n}") for n in constraints]
    for seed, seed_rows in history.groupby("seed", sort=True):
        colour = colours[int(seed) % len(colours)]
        train = seed_rows[seed_rows["phase"] == "train"]
        test = seed_rows[seed_rows["phase"] == "test"]
        for k, (train_column, test_column) in enumerate(panels):
            where = {"row": k // cols + 1, "col": k % cols + 1}
            first = k == 0
            if train_column is not None and len(train):
                fig.add_trace(
                    go.Scatter(
                        x=train["iteration"],
                        y=train[train_column],
                        mode="lines",
                        line={"color": colour},
                        name=f"seed {seed}",
                        legendgroup=str(seed),
                        showlegend=first,
                    ),
                    **where,
                )
            if test_column is not None and len(test):
                y = (
                    test[[f"p_{n}" for n in constraints]].min(axis=1).clip(lower=1e-6)
                    if test_column == "p"
                    else test[test_column]
                )
                fig.add_trace(
                    go.Scatter(
                        x=test["iteration"],
                        y=y,
                        mode="markers",
                        marker={"color": colour, "size": 7},
                        name=f"seed {seed} test",
                        legendgroup=str(seed),
                        showlegend=False,
                    ),
                    **where,
                )
    fig.update_yaxes(type="log", row=1, col=3)
    fig.update_yaxes(type="log", row=2, col=1)
    fig.add_hline(y=alpha_m, line_dash="dash", line_color="#888", row=2, col=1)
    for k in range(4, len(titles)):
        fig.add_hline(y=0, line_color="#888", row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(
        height=260 * rows,
        margin={"l": 40, "r": 20, "t": 40, "b": 30},
        legend={"orientation": "h", "y": -0.05},
        uirevision="history",
        paper_bgcolor="#fff",
    )
    return fig


def marginals_figure(samples: dict) -> go.Figure:
    """Histograms of each parameter's samples, one colour per run, overlaid."""
    names = list(dict.fromkeys(n for frame in samples.values() for n in frame.columns))
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names)
    for r, (run, frame) in enumerate(samples.items()):
        for k, name in enumerate(names):
            if name not in frame:
                continue
            fig.add_trace(
                go.Histogram(
                    x=frame[name],
                    name=run,
                    legendgroup=run,
                    showlegend=k == 0,
                    opacity=0.55,
                    histnorm="probability density",
                    nbinsx=40,
                    marker_color=["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"][r % 4],
                ),
                row=k // cols + 1,
                col=k % cols + 1,
            )
    fig.update_layout(
        barmode="overlay",
        height=240 * rows,
        margin={"l": 40, "r": 20, "t": 40, "b": 30},
        paper_bgcolor="#fff",
    )
    return fig


def compare_page(names: list, chosen: list) -> list:
    """The compare view: runs chosen in a multi-select; the content by a callback."""
    return [
        html.H1("Compare runs"),
        dcc.Dropdown(
            id="compare-select",
            options=[{"label": n, "value": n} for n in names],
            value=[n for n in chosen if n in names],
            multi=True,
            placeholder="choose two or more runs",
        ),
        dcc.Loading(html.Div(id="compare-content")),
    ]
