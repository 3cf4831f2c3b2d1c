"""The form that launches a fit, and the JSON configuration its fields describe."""

from __future__ import annotations

import json

from dash import dcc, html

from .._config import ConfigError

#: The numeric fields: (section, key, default shown, step).
NUMBERS = (
    ("flow", "num_stages", None, 1),
    ("flow", "num_layers", None, 1),
    ("flow", "num_units", 50, 1),
    ("al_params", "num_iters", 2000, 1),
    ("al_params", "max_epochs", 10, 1),
    ("al_params", "init_iters", None, 1),
    ("al_params", "batch_size", None, 1),
    ("al_params", "c0", None, "any"),
    ("al_params", "beta", None, "any"),
    ("fit", "n_seeds", 1, 1),
    ("fit", "random_state", 0, 1),
    ("fit", "max_time", None, "any"),
)

TEXTS = (
    ("model", "statistic", "lds_eigenvalues", "lds_eigenvalues, or package.module:function"),
    ("model", "bounds", "LDS_BOUNDS", 'a name, or {"a": [-10, 10], "b": [0, "inf"]}'),
    ("property", "mu", "LDS_MU", "a name, or [0.0, 6.28], or {...}"),
    ("property", "sigma2", "LDS_SIGMA2", "a name, a list or {...}; empty: means only"),
)


def field_id(section: str, key: str) -> str:
    return f"form-{section}-{key}"


def _field(label, control) -> html.Div:
    return html.Div([html.Label(label), control])


def form_page(circuit_names: list) -> list:
    """The launch form: model, property, flow, AL and fit settings; checked before launch."""
    statistic_names = html.Datalist(
        id="circuit-names", children=[html.Option(value=n) for n in circuit_names]
    )
    texts = [
        _field(
            key,
            dcc.Input(
                id=field_id(section, key),
                type="text",
                value=default,
                placeholder=hint,
                list="circuit-names",
                debounce=False,
            ),
        )
        for section, key, default, hint in TEXTS
    ]
    numbers = {}
    for section, key, default, step in NUMBERS:
        control = dcc.Input(id=field_id(section, key), type="number", value=default, step=step)
        numbers.setdefault(section, []).append(_field(key, control))
    flow_type = dcc.Dropdown(
        id="form-flow-type",
        options=["RealNVP", "MAF"],
        value="RealNVP",
        clearable=False,
        style={"width": "260px", "display": "inline-block", "verticalAlign": "middle"},
    )
    return [
        html.H1("Launch a fit"),
        html.P(
            "The fit runs as `sklearn-epi fit` in a background process of the user who started "
            "this interface, writing its outputs to STORE/<name>. It imports the statistic you "
            "name (a function of sklearn_epi.circuits, or package.module:function), so it runs "
            "only functions you could import yourself; this interface itself imports none."
        ),
        statistic_names,
        html.Div(
            [
                html.Fieldset(
                    [
                        html.Legend("run"),
                        _field("name", dcc.Input(id="form-name", type="text", value="")),
                    ]
                ),
                html.Fieldset([html.Legend("model and property"), *texts]),
                html.Fieldset([html.Legend("flow"), _field("type", flow_type), *numbers["flow"]]),
                html.Fieldset([html.Legend("AL parameters"), *numbers["al_params"]]),
                html.Fieldset([html.Legend("fit"), *numbers["fit"]]),
                html.Fieldset(
                    [
                        html.Legend("other settings (JSON, merged by section)"),
                        dcc.Textarea(
                            id="form-extra",
                            value="",
                            placeholder='{"fit": {"n_test": 50}, "al_params": {"lr": 0.001}}',
                        ),
                    ]
                ),
                html.Button("Launch", id="launch-button"),
                html.Div(id="form-message"),
            ],
            className="form",
        ),
    ]


def _value(text: str):
    """A field's text: JSON (a list, a table, a number) when it parses, else a name."""
    text = (text or "").strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def config_from_form(texts: dict, numbers: dict, flow_type: str, extra: str) -> dict:
    """The JSON configuration the form's fields describe (empty fields left out).

    ``texts`` and ``numbers`` map ``(section, key)`` to the field's value.

    Raises
    ------
    ConfigError
        If the other settings are not a JSON object of sections.
    """
    config = {"model": {}, "property": {}, "flow": {"type": flow_type}, "al_params": {}, "fit": {}}
    for (section, key), text in texts.items():
        if text not in (None, ""):
            config[section][key] = _value(text)
    for (section, key), number in numbers.items():
        if number is not None:
            config[section][key] = number
    if extra and extra.strip():
        try:
            more = json.loads(extra)
        except ValueError as exc:
            raise ConfigError(f"other settings are not JSON: {exc}") from exc
        if not isinstance(more, dict) or not all(isinstance(v, dict) for v in more.values()):
            raise ConfigError(
                'other settings must be a JSON object of sections, {"fit": {"n_test": 50}}; '
                f"got {extra.strip()[:80]!r}"
            )
        for section, values in more.items():
            config.setdefault(section, {}).update(values)
    return {section: values for section, values in config.items() if values}
