"""One name per role in experiment configs: new names load, old names still load."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from workbench.core.errors import ConfigError
from workbench.core.experiments import load_experiment_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# (old-name config, the same config with the new names)
PAIRS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"kind": "methods", "model": "a:m", "samples": 3},
        {"kind": "methods", "solver": "a:m", "samples": 3},
    ),
    (
        {"kind": "calibration", "models": ["a:m", "b:n"], "samples": 2},
        {"kind": "calibration", "solvers": ["a:m", "b:n"], "samples": 2},
    ),
    (
        {"kind": "recovery", "perturber": "a:p", "completer": "a:c", "k": 7},
        {"kind": "recovery", "perturber": "a:p", "completer": "a:c", "samples": 7},
    ),
    (
        {"kind": "on-policy", "completer": "a:c", "k": 5},
        {"kind": "on-policy", "completer": "a:c", "samples": 5},
    ),
    (
        {
            "kind": "weak-prefix",
            "completer": "a:c",
            "weak": "a:w",
            "n_weak": 6,
            "k": 2,
            "weak_temperature": 0.3,
            "weak_max_tokens": 100,
        },
        {
            "kind": "weak-prefix",
            "completer": "a:c",
            "solver": "a:w",
            "solver_samples": 6,
            "samples": 2,
            "solver_temperature": 0.3,
            "solver_max_tokens": 100,
        },
    ),
]


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[p[0]["kind"] for p in PAIRS])
def test_old_and_new_names_load_to_the_same_config(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    a, b = load_experiment_config(old), load_experiment_config(new)
    assert a == b
    assert a.model_dump() == b.model_dump()
    # what a run stores reloads to the same config
    assert load_experiment_config(a.model_dump(mode="json")) == a


def test_new_names_are_the_attributes() -> None:
    methods = load_experiment_config({"kind": "methods", "model": "a:m"})
    assert methods.solver == "a:m"  # type: ignore[attr-defined]
    weak = load_experiment_config({"kind": "weak-prefix", "completer": "a:c", "weak": "a:w"})
    assert (weak.solver, weak.solver_samples, weak.samples) == ("a:w", 4, 4)  # type: ignore[attr-defined]
    recovery = load_experiment_config(
        {"kind": "recovery", "perturber": "a:p", "completer": "a:c", "k": 3}
    )
    assert recovery.samples == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"kind": "methods", "model": "a:m", "solver": "a:m"}, "solver"),
        ({"kind": "calibration", "models": ["a:m"], "solvers": ["a:m"]}, "solvers"),
        (
            {"kind": "recovery", "perturber": "a:p", "completer": "a:c", "k": 2, "samples": 2},
            "samples",
        ),
        ({"kind": "weak-prefix", "completer": "a:c", "weak": "a:w", "solver": "a:x"}, "solver"),
    ],
)
def test_a_field_given_under_two_names_is_an_error(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}: given as .* and .*; give it once") as info:
        load_experiment_config(config)
    assert "\n" not in str(info.value)


def test_a_missing_renamed_field_names_its_old_name_too() -> None:
    with pytest.raises(ConfigError, match=r"solver \(formerly model\): Field required"):
        load_experiment_config({"kind": "methods"})


def test_examples_use_the_new_names() -> None:
    old = {"model", "models", "weak", "n_weak", "k", "weak_temperature", "weak_max_tokens"}
    for path in sorted(EXAMPLES.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert not old & set(data), f"{path.name} uses an old name: {old & set(data)}"
        load_experiment_config(path)
