from __future__ import annotations

import json
from pathlib import Path

import pytest

from peer.resource import API, Model
from web.config import ConfigError, load_config, parse_config
from web.main import main


def problems_of(raw: object) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    return err.value.problems


def test_viam_shape_with_api_or_legacy_type() -> None:
    config = parse_config({
        "components": [
            {"name": "s1", "api": "rdk:component:sensor", "model": "fake", "attributes": {"period_s": 5}},
            {"name": "s2", "type": "sensor", "model": "rdk:builtin:fake", "depends_on": ["s1"]},
        ],
        "network": {"bind_address": "0.0.0.0:9000"},
    })
    first, second = config.components
    assert first.api == second.api == API.component("sensor")
    assert second.model == Model.builtin("fake")
    assert second.depends_on == ("s1",)
    assert second.path == "components[1]"
    assert config.network.bind_address == "0.0.0.0:9000"


def test_every_problem_is_reported_with_its_path() -> None:
    problems = problems_of({
        "components": [
            {"name": "s1", "api": "rdk:component:sensor", "model": "fake"},
            {"name": "s1", "api": "rdk:component:sensor", "model": "fake"},
            {"name": "cam", "api": "rdk:component:sensor", "model": "nope"},
            {"name": "x", "api": "rdk:component:warpdrive", "model": "fake"},
            {"api": "rdk:component:sensor", "model": "fake"},
            {"name": "y", "model": "fake"},
            {"name": "z", "type": "sensor", "model": "fake", "depends_on": ["ghost"], "atributes": {}},
            "not an object",
        ],
        "sevices": [],
    })
    text = "\n".join(problems)
    assert 'components[1].name: duplicate name "s1" (also components[0])' in problems
    assert "components[2].model: no model 'nope' for rdk:component:sensor (known: rdk:builtin:fake)" in problems
    assert "components[3].api: unknown API rdk:component:warpdrive" in text
    assert "components[4].name: must be a non-empty string" in problems
    assert "components[5].api" in text
    assert 'components[6].depends_on[0]: unknown resource "ghost"' in problems
    assert "components[6].atributes: unknown key" in text
    assert "components[7]: must be an object" in problems
    assert "sevices: unknown key" in text


def test_bad_api_and_model_strings() -> None:
    problems = problems_of({"components": [
        {"name": "a", "api": "camera", "model": "fake"},
        {"name": "b", "type": "sensor", "model": "a:b"},
        {"name": "c", "type": "sensor", "model": "fake", "attributes": [], "depends_on": "a"},
    ]})
    text = "\n".join(problems)
    assert "components[0].api" in text and "namespace:type:subtype" in text
    assert "components[1].model" in text
    assert "components[2].attributes: must be an object" in problems
    assert "components[2].depends_on: must be a list of resource names" in problems


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"components": [,]}')
    with pytest.raises(ConfigError, match=r"bad.json:1:\d+: not valid JSON"):
        load_config(bad)


def test_cli_reports_config_errors_before_starting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "robot.json"
    path.write_text(json.dumps({"components": [
        {"name": "s1", "type": "sensor", "model": "fake"},
        {"name": "s2", "type": "sensor", "model": "fake", "attributes": {"period_s": -1}},
    ]}))
    assert main(["serve", "--config", str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "components[1].attributes.period_s" in err


def test_cli_check_accepts_the_builtin_robot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--check"]) == 0
    assert "config ok" in capsys.readouterr().out


def test_custom_model_registered_from_python_is_usable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = tmp_path / "acme_models.py"
    module.write_text(
        "from peer.components.sensor import Sensor\n"
        "from peer.resource.registration import register_model\n"
        "class Thermo(Sensor):\n"
        "    async def get_readings(self, **kwargs):\n"
        "        return {'t': 1}\n"
        "register_model(Sensor, 'acme:demo:thermo', lambda config, deps: Thermo(config.name))\n"
    )
    path = tmp_path / "robot.json"
    path.write_text(json.dumps({"components": [{"name": "t1", "type": "sensor", "model": "acme:demo:thermo"}]}))
    import sys
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["serve", "--module", "acme_models", "--config", str(path), "--check"]) == 0
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_models", None)
    assert "1 components" in capsys.readouterr().out
