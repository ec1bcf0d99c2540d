"""util.registry.Registry: registration, lookup, error messages and the reference's file convention."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from util.errors import I2IError
from util.registry import Registry, snake_case

# -- registering and looking up ---------------------------------------------------------------------


def test_register_get_names_order_and_describe():
    reg = Registry("widget")

    @reg.register("zeta")
    class Zeta:
        """Last letter first.

        More text that describe() leaves out."""

    @reg.register("alpha", description="chosen explicitly")
    def alpha():
        """Not this docstring."""

    @reg.register("mid")
    def mid():
        pass

    assert reg.get("zeta") is Zeta
    assert reg.get("alpha") is alpha
    assert reg.names() == ["zeta", "alpha", "mid"]  # registration order, not alphabetical
    assert list(reg) == ["zeta", "alpha", "mid"]
    assert len(reg) == 3
    assert "alpha" in reg and "beta" not in reg
    assert reg.describe("zeta") == "Last letter first."
    assert reg.describe("alpha") == "chosen explicitly"
    assert reg.describe("mid") == ""
    assert reg.describe("unknown") == ""


def test_register_returns_the_object_unchanged():
    reg = Registry("widget")

    class Plain:
        pass

    assert reg.register("plain")(Plain) is Plain


def test_default_name_is_snake_case():
    reg = Registry("widget")

    @reg.register()
    class FancyWidgetThing:
        pass

    @reg.register()
    def make_widget():
        pass

    assert reg.names() == ["fancy_widget_thing", "make_widget"]
    assert reg.get("fancy_widget_thing") is FancyWidgetThing


@pytest.mark.parametrize(
    "name, expected",
    [
        ("CycleGANModel", "cycle_gan_model"),
        ("UnalignedDataset", "unaligned_dataset"),
        ("Pix2PixModel", "pix2_pix_model"),
        ("already_snake", "already_snake"),
        ("HTMLPage", "html_page"),
    ],
)
def test_snake_case(name, expected):
    assert snake_case(name) == expected


def test_duplicate_name_raises_naming_both_origins():
    reg = Registry("widget")

    @reg.register("shared")
    class FirstWidget:
        pass

    # the second claimant comes from another module, so each origin can be told apart
    with pytest.raises(I2IError) as info:
        reg.register("shared")(textwrap.dedent)
    message = str(info.value)
    assert "widget" in message and "'shared'" in message
    assert f"{__name__} ({__file__})" in message
    assert f"textwrap ({textwrap.__file__})" in message
    assert "override=True" in message
    assert reg.get("shared") is FirstWidget  # the first registration is untouched


def test_registering_the_same_object_twice_is_harmless():
    reg = Registry("widget")

    def builder():
        pass

    reg.register("b")(builder)
    reg.register("b")(builder)
    assert reg.names() == ["b"]


def test_override_replaces_entry_and_description():
    reg = Registry("widget")

    @reg.register("thing")
    def old():
        """Old one."""

    @reg.register("thing", override=True)
    def new():
        """New one."""

    assert reg.get("thing") is new
    assert reg.names() == ["thing"]
    assert reg.describe("thing") == "New one."


class Base:
    pass


def test_base_type_check():
    reg = Registry("gadget", base=Base)

    @reg.register("good")
    class Good(Base):
        pass

    assert reg.get("good") is Good

    class NotASubclass:
        pass

    with pytest.raises(TypeError, match=r"gadget 'bad' must be a subclass of Base"):
        reg.register("bad")(NotASubclass)

    def a_function():
        pass

    with pytest.raises(TypeError, match="subclass of Base"):
        reg.register("func")(a_function)
    assert reg.names() == ["good"]


def test_unknown_name_lists_valid_names_and_closest_match():
    reg = Registry("generator", option="netG")
    for name in ("resnet_9blocks", "resnet_6blocks", "unet_256"):
        reg.register(name)(lambda: None)

    with pytest.raises(I2IError) as info:
        reg.get("resnet_9block")
    message = str(info.value)
    assert "--netG" in message and "'resnet_9block'" in message
    assert "Valid names: resnet_9blocks, resnet_6blocks, unet_256." in message
    assert "Did you mean 'resnet_9blocks'?" in message


def test_unknown_name_without_close_match_or_option():
    reg = Registry("widget")
    reg.register("alpha")(lambda: None)
    with pytest.raises(I2IError) as info:
        reg.get("zzzzzzzz")
    message = str(info.value)
    assert message == "unknown widget 'zzzzzzzz'. Valid names: alpha."
    assert reg.unknown_message("zzzzzzzz") == message


def test_origin_names_module_and_file():
    reg = Registry("widget")

    @reg.register("here")
    class Here:
        pass

    origin = reg.origin("here")
    assert __name__ in origin and Path(__file__).name in origin


# -- the reference's file convention ----------------------------------------------------------------

LEGACY_PACKAGE = "legacypkg_i2i_test"


@pytest.fixture
def legacy_package(tmp_path):
    """A throw-away package on sys.path; every module it leaves in sys.modules is removed afterwards."""
    package = tmp_path / LEGACY_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")

    def write(module: str, source: str) -> None:
        (package / f"{module}.py").write_text(textwrap.dedent(source))

    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield write
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == LEGACY_PACKAGE or m.startswith(LEGACY_PACKAGE + ".")]:
            del sys.modules[name]


def test_legacy_convention_finds_undecorated_class(legacy_package):
    legacy_package("foo_bar_model", """
        class Helper:
            pass

        class FooBarModel:
            '''A model in the reference's file convention.'''
    """)
    reg = Registry("model", legacy=(LEGACY_PACKAGE, "model"))
    assert "foo_bar" not in reg
    cls = reg.get("foo_bar")
    assert cls.__name__ == "FooBarModel"
    assert cls.__module__ == f"{LEGACY_PACKAGE}.foo_bar_model"
    assert "foo_bar" in reg and reg.names() == ["foo_bar"]
    assert reg.describe("foo_bar") == "A model in the reference's file convention."
    assert reg.get("foo_bar") is cls  # cached: a second lookup returns the same class


def test_legacy_match_is_case_insensitive(legacy_package):
    legacy_package("cycle_gan_model", """
        class CycleGANModel:
            pass
    """)
    reg = Registry("model", legacy=(LEGACY_PACKAGE, "model"))
    assert reg.get("cycle_gan").__name__ == "CycleGANModel"


def test_legacy_module_that_registers_itself_is_used_as_registered(legacy_package):
    reg = Registry("model", legacy=(LEGACY_PACKAGE, "model"))
    sys.modules["_i2i_test_registry_holder"] = type(sys)("_i2i_test_registry_holder")
    sys.modules["_i2i_test_registry_holder"].REG = reg
    try:
        legacy_package("self_reg_model", """
            from _i2i_test_registry_holder import REG

            @REG.register("self_reg")
            class SomethingElse:
                pass

            class SelfRegModel:
                pass
        """)
        assert reg.get("self_reg").__name__ == "SomethingElse"
    finally:
        del sys.modules["_i2i_test_registry_holder"]


def test_legacy_module_that_fails_to_import_names_the_file(legacy_package):
    legacy_package("broken_model", """
        raise RuntimeError("boom in module body")
    """)
    reg = Registry("model", legacy=(LEGACY_PACKAGE, "model"))
    with pytest.raises(I2IError) as info:
        reg.get("broken")
    message = str(info.value)
    assert f"{LEGACY_PACKAGE}/broken_model.py" in message
    assert "RuntimeError" in message and "boom in module body" in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_legacy_module_without_matching_class_is_unknown(legacy_package):
    legacy_package("empty_model", """
        class SomethingUnrelated:
            pass
    """)
    reg = Registry("model", option="model", legacy=(LEGACY_PACKAGE, "model"))
    reg.register("known")(lambda: None)
    with pytest.raises(I2IError) as info:
        reg.get("empty")
    message = str(info.value)
    assert message.startswith("unknown model --model 'empty'")
    assert "Valid names: known." in message
    assert "empty" not in reg


def test_legacy_class_imported_from_elsewhere_does_not_count(legacy_package):
    legacy_package("other", """
        class ReexportModel:
            pass
    """)
    legacy_package("reexport_model", f"""
        from {LEGACY_PACKAGE}.other import ReexportModel
    """)
    reg = Registry("model", legacy=(LEGACY_PACKAGE, "model"))
    with pytest.raises(I2IError, match="unknown model 'reexport'"):
        reg.get("reexport")


def test_legacy_class_must_subclass_base(legacy_package):
    legacy_package("wrong_base_model", """
        class WrongBaseModel:
            pass
    """)
    reg = Registry("model", base=Base, legacy=(LEGACY_PACKAGE, "model"))
    with pytest.raises(I2IError, match="unknown model 'wrong_base'"):
        reg.get("wrong_base")


def test_legacy_missing_file_and_odd_names_are_unknown(legacy_package):
    reg = Registry("model", legacy=(LEGACY_PACKAGE, "model"))
    for name in ("does_not_exist", "../escape", "a.b", "with-dash"):
        with pytest.raises(I2IError, match="unknown model"):
            reg.get(name)
