"""The Dash application: pages, their callbacks, the token check and the server."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote

import dash
import pandas as pd
from dash import Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate

from .._config import ConfigError
from . import _form, _layout
from ._access import require_token
from ._catalog import RunCatalog
from ._fitted import FittedViews, has_fit, png_source
from ._launcher import Launcher

#: Hosts on which the interface may run without a token.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def create_app(store, token: str | None = None) -> dash.Dash:
    """The interface over ``store`` as a Dash application (its Flask server: ``app.server``).

    Parameters
    ----------
    store : str or path-like
        A directory of ``sklearn-epi fit`` output directories and
        :class:`~sklearn_epi.RunStore` runs, or one run of either kind.
        Fits launched from the interface get a directory here.
    token : str, optional
        When given, every request without it is answered 403 (see
        :func:`serve`).

    Returns
    -------
    dash.Dash
        Serve it with :func:`serve`, or test it with
        ``app.server.test_client()``.
    """
    store = Path(store)
    if not store.is_dir():
        raise ValueError(f"store must be a directory; got {str(store)!r}")
    catalog, views, launcher = RunCatalog(store), FittedViews(), Launcher(store)
    app = dash.Dash(
        __name__,
        title="sklearn-epi",
        update_title=None,
        suppress_callback_exceptions=True,
        assets_folder=str(Path(__file__).parent / "no-assets"),
    )
    app.index_string = _layout.INDEX
    app.layout = _layout.frame()
    if token:
        require_token(app.server, token)

    _page_callbacks(app, catalog, launcher)
    _run_callbacks(app, catalog, views, launcher)
    _compare_callbacks(app, catalog, views, launcher)
    _form_callbacks(app, launcher)
    return app


def _page_callbacks(app, catalog, launcher):
    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def page(pathname, search):
        pathname = pathname or "/"
        if pathname.startswith("/run/"):
            entry = catalog.entry(unquote(pathname[len("/run/") :]))
            if entry is None:
                return [html.H1("No such run"), html.P(pathname)]
            return _layout.run_page(entry.name, entry.config_file() is not None)
        if pathname.startswith("/compare"):
            chosen = parse_qs((search or "").lstrip("?")).get("runs", [""])[0].split(",")
            return _layout.compare_page([e.name for e in catalog.entries()], chosen)
        if pathname.startswith("/new"):
            from .. import circuits

            return _form.form_page(sorted(circuits.__all__))
        return _layout.runs_page()

    @app.callback(
        Output("runs-table", "data"),
        Output("runs-count", "children"),
        Input("runs-interval", "n_intervals"),
    )
    def runs_table(_):
        data = [catalog.summary(e, launcher.state(e.root)) for e in catalog.entries()]
        return _layout.table_rows(data), f"  {len(data)} runs in {catalog.store}"

    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Output("url", "search", allow_duplicate=True),
        Input("compare-button", "n_clicks"),
        State("runs-table", "selected_row_ids"),
        prevent_initial_call=True,
    )
    def compare_selected(clicks, selected):
        if not clicks:  # the page was drawn, nothing was clicked
            raise PreventUpdate
        return "/compare", "?runs=" + ",".join(selected or [])


def _run_callbacks(app, catalog, views, launcher):
    @app.callback(
        Output("run-status", "children"),
        Output("epoch-count", "children"),
        Output("history-graph", "figure"),
        Output("history-graph", "className"),
        Output("run-summary", "children"),
        Output("stop-button", "disabled"),
        Output("resume-button", "disabled"),
        Output("run-log", "children"),
        Output("run-log", "hidden"),
        Output("fit-stamp", "data"),
        Input("run-interval", "n_intervals"),
        State("run-name", "data"),
        State("history-graph", "className"),
        State("fit-stamp", "data"),
    )
    def refresh(_, name, shown, stamp):
        entry = catalog.entry(name)
        if entry is None:  # removed while its page was open
            raise PreventUpdate
        process = launcher.state(entry.root)
        # Status and tables first, together: the files may change while the
        # history's figure is drawn.
        row = catalog.summary(entry, process)
        summary = _summary(catalog, entry)
        running = row["status"] == "running"
        try:
            history = catalog.history(entry)
            held = catalog.description(entry) or {}
        except Exception:  # the status row says what is damaged
            history, held = pd.DataFrame(), {}
        version = f"rows-{len(history)}"
        figure = dash.no_update
        if version != shown and len(history):
            constraints = held.get("constraints", [])
            alpha = float(held.get("params", {}).get("alpha", "0.05"))
            figure = _layout.history_figure(history, constraints, alpha / max(1, len(constraints)))
        epochs = row["epochs"] or 0
        fitted = str(entry.fit_file.stat().st_mtime_ns) if has_fit(entry) else None
        log = launcher.log_tail(entry.root) if process is not None else ""
        return (
            row["status"],
            f"{epochs} epochs finished",
            figure,
            version,
            summary,
            not running,
            running or entry.config_file() is None,
            log,
            not log,
            fitted if fitted != stamp else dash.no_update,
        )

    @app.callback(
        Output("fitted-section", "children"),
        Input("fit-stamp", "data"),
        State("run-name", "data"),
    )
    def fitted(stamp, name):
        entry = catalog.entry(name)
        if not stamp or entry is None:
            return html.P("The fitted distribution shows here once the fit has returned.")
        return _fitted_section(views, entry)

    @app.callback(
        Output("action-message", "children"),
        Input("stop-button", "n_clicks"),
        Input("resume-button", "n_clicks"),
        State("run-name", "data"),
        prevent_initial_call=True,
    )
    def act(stops, resumes, name):
        if not (stops or resumes):  # the page was drawn, nothing was clicked
            raise PreventUpdate
        entry = catalog.entry(name)
        if entry is None:
            raise PreventUpdate
        try:
            if ctx.triggered_id == "stop-button":
                sent = launcher.stop(entry.root)
                if not sent:
                    return " not running"
                return " SIGTERM sent: the fit keeps its finished epochs"
            launcher.start(entry.root)
            return " resumed: the same command runs again"
        except ConfigError as exc:
            return html.Span(f" {exc}", className="error")


def _summary(catalog, entry) -> list:
    """The run's result, seeds and configuration."""
    parts = []
    result = catalog.json_file(entry.root / "result.json") if entry.kind == "cli" else None
    if result:
        values = {k: v for k, v in result.items() if k != "pvalues"}
        parts.append(html.Div([html.H2("Result"), _layout.simple_table(_series(values))]))
    seeds = []
    for index, saved in catalog.seeds(entry).items():
        last = saved.epochs[-1] if saved is not None and saved.epochs else None
        seeds.append(
            {
                "seed": index,
                "epochs": None if last is None else last.epoch,
                "entropy": None if last is None else float(last.entropy),
                "converged": None if last is None else bool(last.converged),
                "status": saved.result.status if saved and saved.finished else "unfinished",
                "wall time (s)": None if last is None else float(last.wall_time),
            }
        )
    if seeds:
        table = _layout.simple_table(pd.DataFrame(seeds), index=False, id="seeds-table")
        parts.append(html.Div([html.H2("Seeds (latest epoch)"), table]))
    shown = [html.Div(parts, className="row")]
    config = entry.config_file()
    if config is not None:
        summary = html.Summary(f"Configuration ({config.name})")
        shown.append(html.Details([summary, html.Pre(config.read_text())], className="card"))
    return shown


def _series(mapping) -> pd.DataFrame:
    return pd.DataFrame({"value": list(mapping.values())}, index=list(mapping.keys()))


def _fitted_section(views, entry) -> list:
    """Pairplot and predictive check of the kept epoch; Hessian directions at the mode."""
    parts = [html.H2("Fitted distribution")]
    pictures = []
    for name in ("pairplot", "predictive"):
        try:
            image = html.Img(src=png_source(views.figure(entry, name)), className="figure")
        except Exception as exc:  # shown in place of the picture
            image = html.P(f"{name}: {exc}", className="error")
        pictures.append(html.Div([html.H2(name), image], id=f"{name}-figure", style={"flex": 1}))
    parts.append(html.Div(pictures, className="row"))
    try:
        mode, eigenvalues, eigenvectors = views.sensitivity(entry)
    except Exception as exc:
        return [*parts, html.P(f"Hessian at the mode: {exc}", className="error")]
    last = len(eigenvalues) - 1
    directions = pd.DataFrame(
        {
            "mode": mode,
            f"most sensitive v1 (λ = {eigenvalues[0]:.3g})": eigenvectors[0],
            f"least sensitive v{last + 1} (λ = {eigenvalues[last]:.3g})": eigenvectors[last],
        }
    )
    directions.index.name = "parameter"
    spectrum = pd.DataFrame(
        {"eigenvalue": eigenvalues}, index=[f"v{k + 1}" for k in range(last + 1)]
    )
    parts += [
        html.H2("Hessian of log q at the mode"),
        html.P(
            "Most negative eigenvalue: the parameter combination the property is most "
            "sensitive to; nearest zero: the most robust one."
        ),
        html.Div(
            [
                _layout.simple_table(directions, id="sensitivity-table"),
                _layout.simple_table(spectrum),
            ],
            className="row",
        ),
    ]
    return parts


def _compare_callbacks(app, catalog, views, launcher):
    @app.callback(Output("compare-content", "children"), Input("compare-select", "value"))
    def compare(chosen):
        entries = [e for e in (catalog.entry(n) for n in chosen or []) if e is not None]
        if len(entries) < 2:
            return html.P("Choose two or more runs.")
        summary, tables, samples, undrawn = [], [], {}, []
        for entry in entries:
            row = catalog.summary(entry, launcher.state(entry.root))
            summary.append({k: row[k] for k in ("run", "status", "converged", "entropy", "epochs")})
            tables.append(html.Div([html.H2(entry.name), _constraint_table(catalog, entry)]))
            if has_fit(entry):
                try:
                    samples[entry.name] = views.samples(entry)
                except Exception as exc:  # listed, and said why it is not drawn
                    undrawn.append(f"{entry.name}: marginals not drawn ({exc})")
        parts = [
            html.H2("Entropies"),
            _layout.simple_table(pd.DataFrame(summary), index=False, id="compare-entropies"),
            html.H2("Constraints at the reported epoch"),
            html.Div(tables, className="row"),
        ]
        if samples:
            figure = _layout.marginals_figure(samples)
            parts += [html.H2("Marginals"), dash.dcc.Graph(id="marginals", figure=figure)]
        parts += [html.P(line, className="error") for line in undrawn]
        return parts


def _constraint_table(catalog, entry):
    try:
        held = catalog.description(entry) or {}
        kept = catalog.kept_record(entry)
    except Exception as exc:
        return html.P(str(exc), className="error")
    if kept is None:
        return html.P("no epoch yet")
    seed, record = kept
    names = held.get("constraints", [])
    targets = list(held.get("mu") or []) + list(held.get("sigma2") or [])
    frame = pd.DataFrame(
        {
            "target": targets if len(targets) == len(names) else [None] * len(names),
            "R": list(record.R),
            "p-value": list(record.pvalues),
        },
        index=pd.Index(names, name=f"seed {seed}, epoch {record.epoch}"),
    )
    return _layout.simple_table(frame)


def _form_callbacks(app, launcher):
    text_fields = [(s, k) for s, k, _, _ in _form.TEXTS]
    number_fields = [(s, k) for s, k, _, _ in _form.NUMBERS]

    @app.callback(
        Output("form-message", "children"),
        Output("url", "pathname", allow_duplicate=True),
        Input("launch-button", "n_clicks"),
        State("form-name", "value"),
        State("form-flow-type", "value"),
        State("form-extra", "value"),
        *[State(_form.field_id(s, k), "value") for s, k in text_fields + number_fields],
        prevent_initial_call=True,
    )
    def launch(clicks, name, flow_type, extra, *values):
        if not clicks:  # the page was drawn, nothing was clicked
            raise PreventUpdate
        texts = dict(zip(text_fields, values[: len(text_fields)]))
        numbers = dict(zip(number_fields, values[len(text_fields) :]))
        try:
            config = _form.config_from_form(texts, numbers, flow_type, extra)
            launcher.create((name or "").strip(), config)
        except (ConfigError, ValueError, TypeError) as exc:
            return html.Div(str(exc), className="error", id="form-error"), dash.no_update
        return html.Div(f"launched {name}", className="ok"), _layout.run_link(name.strip())


def serve(store=".", host: str = "127.0.0.1", port: int = 8050, token: str | None = None) -> None:
    """Serve the interface over ``store`` until Ctrl-C.

    Parameters
    ----------
    store : str or path-like, default="."
        See :func:`create_app`.
    host : str, default="127.0.0.1"
        The address to listen on. Any other than this machine's own
        (``127.0.0.1``, ``localhost``, ``::1``) needs a token: without one,
        a random token is made and printed in the URL, as Jupyter does.
    port : int, default=8050
        The port (0: any free one).
    token : str, optional
        When given (on any host), every request without it is refused with 403.
    """
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietAboutTokens(WSGIRequestHandler):
        """The access log without query strings, which hold the token."""

        def log_request(self, code="-", size="-"):
            self.path = self.path.split("?", 1)[0]  # logged once answered
            super().log_request(code, size)

    if token is None and host not in LOCAL_HOSTS:
        token = secrets.token_urlsafe(24)
    app = create_app(store, token)
    server = make_server(host, port, app.server, threaded=True, request_handler=QuietAboutTokens)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.port}/" + (f"?token={token}" if token else "")
    where = Path(store).resolve()
    print(f"sklearn-epi ui: serving {where} at\n    {url}\n(Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
