from __future__ import annotations

import pytest

from peer.components.sensor import FakeSensor, Sensor
from peer.errors import DuplicateResourceError, NotSupportedError, ResourceNotFoundError, ValidationError
from peer.resource import (
    API,
    Model,
    Registry,
    ResourceConfig,
    ResourceCreatorRegistration,
    ResourceManager,
    ResourceName,
)
from peer.resource.build import build_resources

from .fakes import WIDGET_API, Widget, register_widget_api


def test_api_and_model_strings() -> None:
    assert str(API.from_string("rdk:component:camera")) == "rdk:component:camera"
    assert Model.from_string("fake") == Model.builtin("fake")
    assert str(Model.from_string("acme:demo:spinner")) == "acme:demo:spinner"
    assert ResourceName.from_string("rdk:component:camera/cam1") == ResourceName("rdk", "component", "camera", "cam1")
    for bad in ("camera", "a:b", "a:b:c:d", "rdk:component:ca mera"):
        with pytest.raises(ValidationError):
            API.from_string(bad)
    with pytest.raises(ValidationError):
        Model.from_string("a:b")


def test_subtype_is_an_alias_of_api() -> None:
    assert Sensor.SUBTYPE == Sensor.API == API.component("sensor")
    assert FakeSensor.get_resource_name("s") == ResourceName("rdk", "component", "sensor", "s")


def test_register_api_twice_is_duplicate() -> None:
    register_widget_api()
    with pytest.raises(DuplicateResourceError):
        register_widget_api()


def test_registrations_do_not_leak_between_tests_part1() -> None:
    register_widget_api()
    assert WIDGET_API in Registry.REGISTERED_APIS()


def test_registrations_do_not_leak_between_tests_part2() -> None:
    assert WIDGET_API not in Registry.REGISTERED_APIS()
    assert API.component("sensor") in Registry.REGISTERED_SUBTYPES()


def test_resource_creator_lookup_and_validator() -> None:
    register_widget_api()
    model = Model.from_string("acme:demo:w")

    def validate(config: ResourceConfig) -> list[str]:
        if "size" not in config.attributes:
            raise ValidationError("is required", f"{config.path}.attributes.size")
        return []

    Registry.register_resource_creator(
        WIDGET_API, model, ResourceCreatorRegistration(lambda c, d: Widget(c.name), validate)
    )
    assert Registry.lookup_validator(WIDGET_API, model) is validate
    assert isinstance(Registry.lookup_resource_creator(WIDGET_API, model)(
        ResourceConfig("w", WIDGET_API, model), {}), Widget)
    with pytest.raises(DuplicateResourceError):
        Registry.register_resource_creator(WIDGET_API, model, ResourceCreatorRegistration(lambda c, d: Widget(c.name)))
    with pytest.raises(ResourceNotFoundError):
        Registry.lookup_resource_creator(WIDGET_API, Model.builtin("nope"))
    assert "acme:component:widget/acme:demo:w" in Registry.REGISTERED_RESOURCE_CREATORS()


def test_creator_for_unknown_api_is_refused() -> None:
    with pytest.raises(ValidationError):
        Registry.register_resource_creator(API("x", "component", "y"), Model.builtin("m"),
                                           ResourceCreatorRegistration(lambda c, d: Widget(c.name)))


def test_manager_rejects_duplicates_and_unregistered_apis() -> None:
    manager = ResourceManager([FakeSensor("s1")])
    with pytest.raises(DuplicateResourceError):
        manager.register(FakeSensor("s1"))
    with pytest.raises(ResourceNotFoundError):  # Widget's API is not registered in this test
        manager.register(Widget("w"))


def test_short_names_resolve_only_when_unique() -> None:
    manager = ResourceManager([FakeSensor("left:temp"), FakeSensor("right:temp"), FakeSensor("right:hum")])
    hum = manager.get_resource(Sensor, FakeSensor.get_resource_name("hum"))
    assert hum.name == "right:hum"
    with pytest.raises(ResourceNotFoundError):  # ambiguous between two remotes
        manager.get_resource(Sensor, FakeSensor.get_resource_name("temp"))
    manager.register(FakeSensor("temp"))  # a local resource wins over remotes
    assert manager.get_resource(Sensor, FakeSensor.get_resource_name("temp")).name == "temp"


def test_get_resource_checks_the_type() -> None:
    register_widget_api()
    manager = ResourceManager([Widget("w")])
    with pytest.raises(ResourceNotFoundError):
        manager.get_resource(Sensor, ResourceName.of(WIDGET_API, "w"))


async def test_remove_closes_and_forgets() -> None:
    register_widget_api()
    widget = Widget("remote:w")
    manager = ResourceManager([widget])
    rn = widget.get_resource_name(widget.name)
    assert manager.get_resource(Widget, ResourceName.of(WIDGET_API, "w")) is widget
    await manager.remove_resource(rn)
    assert widget.closed == 1
    assert manager.resource_names() == []
    with pytest.raises(ResourceNotFoundError):
        manager.get_resource(Widget, ResourceName.of(WIDGET_API, "w"))
    with pytest.raises(ResourceNotFoundError):
        await manager.remove_resource(rn)


async def test_remove_forgets_even_when_close_fails() -> None:
    register_widget_api()
    widget = Widget("w", fail_close=True)
    manager = ResourceManager([widget])
    with pytest.raises(RuntimeError):
        await manager.remove_resource(widget.get_resource_name("w"))
    assert manager.resource_names() == []


async def test_close_closes_all_and_logs_errors(caplog: pytest.LogCaptureFixture) -> None:
    register_widget_api()
    good, bad = Widget("good"), Widget("bad", fail_close=True)
    manager = ResourceManager([bad, good])
    await manager.close()  # must not raise
    assert good.closed == 1 and bad.closed == 1
    assert manager.resource_names() == []
    assert "bad" in caplog.text and "refuses to close" in caplog.text


async def test_close_is_idempotent() -> None:
    register_widget_api()
    widget = Widget("w")
    await widget.close()
    await widget.close()
    assert widget.closed == 1


async def test_default_do_command_is_not_supported() -> None:
    with pytest.raises(NotSupportedError):
        await FakeSensor("s").do_command({"x": 1})


async def test_from_robot_looks_up_by_api() -> None:
    sensor = FakeSensor("s1")
    manager = ResourceManager([sensor])
    assert FakeSensor.from_robot(manager, "s1") is sensor
    with pytest.raises(ResourceNotFoundError):
        FakeSensor.from_robot(manager, "s2")


async def test_build_orders_dependencies_and_passes_them() -> None:
    register_widget_api()
    seen: dict[str, list[str]] = {}

    def create(config: ResourceConfig, deps: dict[ResourceName, object]) -> Widget:
        seen[config.name] = sorted(rn.name for rn in deps)
        return Widget(config.name)

    model = Model.builtin("w")
    Registry.register_resource_creator(WIDGET_API, model, ResourceCreatorRegistration(create))
    configs = [
        ResourceConfig("top", WIDGET_API, model, depends_on=("mid",), path="components[0]"),
        ResourceConfig("mid", WIDGET_API, model, depends_on=("low",), path="components[1]"),
        ResourceConfig("low", WIDGET_API, model, path="components[2]"),
    ]
    built = await build_resources(configs)
    assert [r.name for r in built] == ["top", "mid", "low"]
    assert list(seen) == ["low", "mid", "top"]
    assert seen["top"] == ["mid"]


async def test_build_reports_cycles_and_closes_on_failure() -> None:
    register_widget_api()
    made: list[Widget] = []

    def create(config: ResourceConfig, deps: object) -> Widget:
        if config.name == "boom":
            raise RuntimeError("no hardware")
        made.append(Widget(config.name))
        return made[-1]

    model = Model.builtin("w")
    Registry.register_resource_creator(WIDGET_API, model, ResourceCreatorRegistration(create))
    cyclic = [
        ResourceConfig("a", WIDGET_API, model, depends_on=("b",), path="components[0]"),
        ResourceConfig("b", WIDGET_API, model, depends_on=("a",), path="components[1]"),
    ]
    with pytest.raises(ValidationError, match="cycle"):
        await build_resources(cyclic)
    failing = [
        ResourceConfig("ok", WIDGET_API, model, path="components[0]"),
        ResourceConfig("boom", WIDGET_API, model, depends_on=("ok",), path="components[1]"),
    ]
    with pytest.raises(ValidationError, match=r"components\[1\].*no hardware"):
        await build_resources(failing)
    assert [w.closed for w in made] == [1]
