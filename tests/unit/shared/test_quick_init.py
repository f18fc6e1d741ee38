"""``quick_init`` builds the same frozen values as the dataclass's own ``__init__``,
and refuses classes it could not build the same way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from afflux.shared.core.attribution import ClickTouch, OrderTouch
from afflux.shared.core.frozen import quick_init

pytestmark = pytest.mark.unit


@dataclass(frozen=True, slots=True)
class Plain:
    a: str
    b: int
    c: bool = False
    d: tuple[int, ...] = ()


Quick = quick_init(
    dataclass(frozen=True, slots=True)(
        type("Quick", (), {"__annotations__": dict(Plain.__annotations__), "c": False, "d": ()})
    )
)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("x", 1), {}),
        (("x", 1, True), {}),
        (("x", 1, True, (2, 3)), {}),
        (("x",), {"b": 2, "d": (4,)}),
        ((), {"a": "y", "b": 3, "c": True}),
    ],
)
def test_values_equal_those_the_dataclass_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, quick = Plain(*args, **kwargs), Quick(*args, **kwargs)  # type: ignore[arg-type]
    assert dataclasses.astuple(quick) == dataclasses.astuple(plain)
    assert quick == Quick(*args, **kwargs)
    assert hash(quick) == hash(Quick(*args, **kwargs))
    assert repr(quick).removeprefix("Quick") == repr(plain).removeprefix("Plain")


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((), {}, "missing 2 required positional arguments"),
        (("x", 1, True, (), 5), {}, "takes from 3 to 5 positional arguments but 6"),
        (("x", 1), {"e": 1}, "unexpected keyword argument 'e'"),
        (("x", 1), {"a": "y"}, "multiple values for argument 'a'"),
    ],
)
def test_wrong_arguments_are_refused_as_the_dataclass_refuses_them(
    args: tuple[object, ...], kwargs: dict[str, object], error: str
) -> None:
    for cls in (Plain, Quick):
        with pytest.raises(TypeError, match=error):
            cls(*args, **kwargs)


def test_the_values_stay_frozen() -> None:
    touch = ClickTouch("c1", "aff", "camp", 5, True, "ip")
    with pytest.raises(dataclasses.FrozenInstanceError):
        touch.at = 6  # type: ignore[misc]
    assert dataclasses.replace(touch, at=6) == ClickTouch("c1", "aff", "camp", 6, True, "ip")
    assert OrderTouch("o", "camp", 7) == OrderTouch("o", "camp", 7, None, None, None, None)


def test_classes_it_cannot_build_the_same_way_are_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class WithPostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class Unslotted:
        a: int

    for cls in (WithFactory, WithPostInit, Mutable, Unslotted):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)
