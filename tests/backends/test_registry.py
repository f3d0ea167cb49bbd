"""The backend registry: the built-in types in their documented order, plug-ins from entry points or
``register``, and the lookups the loader, the daemon and the engine make (issue 18)."""

from __future__ import annotations

from dataclasses import replace
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from reconciler.backends import registry
from reconciler.backends.descriptor import BackendDescriptor, CampaignFamily
from reconciler.backends.registry import UnknownBackendType

EXTRA = BackendDescriptor(type="extra-ota", family=CampaignFamily.ADOPTED, adapter=lambda: None,  # type: ignore[arg-type,return-value]
                          auth=("secret",), campaign_fields=frozenset({"campaignId"}),
                          campaign_states=("running", "stopped"))


def test_the_built_in_types_are_listed_in_their_documented_order_with_their_families() -> None:
    assert {d.type: d.family.value for d in registry.BUILT_IN} == {
        "yateota": "adopted", "iot-campaigns": "created", "ogangi": "sms", "sms-gateway": "sms"}
    assert registry.types()[:4] == ("yateota", "iot-campaigns", "ogangi", "sms-gateway")


def test_an_adapter_is_found_by_type_and_its_traits_name_the_same_type() -> None:
    for descriptor in registry.BUILT_IN:
        assert registry.adapter_for(descriptor.type).traits.type == descriptor.type


def test_an_unknown_type_is_a_clear_lookup_error() -> None:
    assert registry.find("nope") is None and registry.find(3) is None
    with pytest.raises(UnknownBackendType, match="no backend type 'nope' is registered; known: yateota, "):
        registry.adapter_for("nope")


def test_a_registered_type_is_known_until_unregistered_and_bumps_the_revision() -> None:
    before = registry.revision()
    with registry.registered(EXTRA):
        assert registry.types()[-1] == "extra-ota" and registry.revision() != before
        with pytest.raises(ValueError, match="already registered"):
            registry.register(replace(EXTRA, title="another"))
    assert registry.find("extra-ota") is None and registry.revision() != before


def test_a_built_in_type_cannot_be_unregistered() -> None:
    with pytest.raises(ValueError, match="built in"):
        registry.unregister("ogangi")


def test_pushes_are_received_by_type_name_and_by_the_paths_handed_out_before() -> None:
    assert registry.push_receiver("iot").type == "iot-campaigns"  # type: ignore[union-attr]
    assert registry.push_receiver("iot-campaigns").type == "iot-campaigns"  # type: ignore[union-attr]
    assert registry.push_receiver("sms-gateway").type == "sms-gateway"  # type: ignore[union-attr]
    assert registry.push_receiver("ogangi") is None  # it pushes nothing
    assert registry.push_receiver("../admin") is None


def test_a_descriptor_needs_its_campaign_states() -> None:
    with pytest.raises(ValueError, match="campaign_states"):
        replace(EXTRA, campaign_states=())


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)


def test_installed_plug_ins_register_by_entry_point_and_a_broken_one_is_skipped_with_a_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    points = [_entry_point("extra", f"{__name__}:EXTRA"), _entry_point("broken", "no_such_module_xyz:THING")]

    def fake_entry_points(**selection: Any) -> list[EntryPoint]:
        return points if selection == {"group": registry.ENTRY_POINT_GROUP} else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "_entry_points_loaded", [False])
    try:
        with pytest.warns(RuntimeWarning, match="backend plug-in 'broken' .* not loaded: ModuleNotFoundError"):
            assert "extra-ota" in registry.types()
        assert registry.find("extra-ota") is EXTRA
        assert registry.types()[:4] == tuple(d.type for d in registry.BUILT_IN)
    finally:
        registry.unregister("extra-ota")
