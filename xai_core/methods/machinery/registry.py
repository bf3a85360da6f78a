"""The method registry: every explanation method is one function registered by name.

A method is ``fn(model, x, target, **params) -> Attribution`` (its maps, extras and facts; the
context is ``api.explain``'s) with ``x [1,T,C,H,W]`` on the model's device and ``target`` a
resolved ``Target``.  It declares its family, the model capabilities it needs, the tasks it
supports, what else a model must be for it (``applies``) and its parameters (with defaults and
ranges, so that the UI can build widgets from them).

The methods are found, on the first look-up, by importing the method modules (``method_modules``:
each module at the top of ``xai_core.methods`` and each sub-package's ``method`` module, outside
this sub-package): a method module registers its methods when it is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

from ...citations import references_section
from ...models.base import CAPABILITY_SOURCES

METHODS_PACKAGE = __name__.rsplit(".", 2)[0]  # xai_core.methods
MACHINERY = __name__.rsplit(".", 1)[0]  # this sub-package, which holds no method

PARAM_KINDS = ("int", "float", "choice", "bool", "str", "layer", "ints")
FAMILIES = ("spatial", "temporal", "motion")
# How a method's signed maps are read when they are scored or ranked: "positive" (the part that
# speaks for the target: CAMs, attributions, relevance) or "magnitude" (plain gradients, whose sign
# flips from pixel to pixel).  Rendering lets the user choose; evaluation needs one reading.
READINGS = ("positive", "magnitude")


class MethodError(ValueError):
    """A method that does not exist, does not fit the model, or got bad parameters."""


@dataclass(frozen=True)
class Param:
    """One parameter of a method.  ``kind`` "layer" takes the name of a model layer (None: the
    model's default Grad-CAM layer); "ints" takes ``size`` integers (a tuple, or "1,10,10"), each
    within the bounds."""

    name: str
    kind: str
    default: object = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    help: str = ""
    size: int | None = None

    def coerce(self, value, method: str):
        """Check and convert a user value (strings from the command line are accepted)."""
        where = f"parameter {self.name!r} of {method}"
        given = value
        if value is None:
            if self.kind in ("layer", "str") or self.default is None:
                return None
            raise MethodError(f"{where} needs a value")
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif self.kind == "float":
                value = float(value)
            elif self.kind == "ints":
                parts = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
                value = tuple(int(v) for v in parts)
                if any(float(v) != int(v) for v in parts) or (self.size and len(value) != self.size):
                    raise ValueError
            elif self.kind == "bool":
                if isinstance(value, str):
                    if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError
                    value = value.lower() in ("1", "true", "yes")
                else:
                    value = bool(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            what = f"{self.size} integers (e.g. 1,10,10)" if self.kind == "ints" else self.kind
            raise MethodError(f"{where} must be {what}, got {given!r}") from None
        if self.kind == "choice" and value not in self.choices:
            raise MethodError(f"{where} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        for v in value if self.kind == "ints" else (value,):
            if self.minimum is not None and v < self.minimum:
                raise MethodError(f"{where} must be >= {self.minimum}, got {value}")
            if self.maximum is not None and v > self.maximum:
                raise MethodError(f"{where} must be <= {self.maximum}, got {value}")
        return value

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices),
            "help": self.help,
            "size": self.size,
        }


@dataclass(frozen=True)
class MethodCard:
    """What a teacher says about a method: what it ``computes`` (a formula or two sentences), what
    it ``needs`` from the model beyond its capabilities, what it ``cannot_show``, its known
    ``failures`` (one sentence each) and its ``cost`` in passes through the model.  The paper is
    the spec's ``references``."""

    computes: str
    needs: str
    cannot_show: str
    failures: tuple[str, ...]
    cost: str

    def to_dict(self) -> dict:
        return {
            "computes": self.computes,
            "needs": self.needs,
            "cannot_show": self.cannot_show,
            "failures": list(self.failures),
            "cost": self.cost,
        }


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fn: Callable
    family: str
    requires: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset({"classification", "regression"})
    params: tuple[Param, ...] = ()
    description: str = ""
    references: tuple[str, ...] = field(default=())
    reading: str = "positive"
    applies: Callable[[object], str | None] | None = None
    card: MethodCard | None = None
    imports: tuple[str, ...] = ()  # heavy modules it imports when it runs: ``explain`` imports them untimed

    def imports_for(self, params: dict) -> tuple[str, ...]:
        """The heavy modules a run with ``params`` imports: its own and its base method's (``base``)."""
        base = params.get("base")
        return self.imports + (REGISTRY[base].imports if isinstance(base, str) and base in REGISTRY else ())

    def unavailable_reason(self, model) -> str | None:
        """Why ``model`` cannot use this method, or None when it can: a capability it lacks, its
        task, or the reason the method's own ``applies(model)`` gives."""
        missing = sorted(self.requires - set(model.capabilities))
        if missing:
            what = ", ".join(m.replace("_", " ") for m in missing)
            notes = getattr(getattr(model, "info", None), "notes", {})
            why = "".join(f"; {notes[m]}" for m in missing if notes.get(m))
            how = "; ".join(CAPABILITY_SOURCES[m] for m in missing if m in CAPABILITY_SOURCES and not notes.get(m))
            offer = f" (a network of your own offers it with {how})" if how else ""
            return f"{self.name} needs a model with {what}; {model.name} has none{why}{offer}"
        if model.task not in self.tasks:
            return f"{self.name} does not support {model.task} models"
        return self.applies(model) if self.applies is not None else None

    def resolve_params(self, params: dict) -> dict:
        """Defaults filled in, user values checked; unknown names are an error."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            raise MethodError(f"{self.name} has no parameter {unknown[0]!r} (its parameters: {names})")
        return {name: p.coerce(params.get(name, p.default), self.name) for name, p in known.items()}

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "requires": sorted(self.requires),
            "tasks": sorted(self.tasks),
            "params": [p.to_dict() for p in self.params],
            "description": self.description,
            "references": list(self.references),
            "reading": self.reading,
            "card": self.card.to_dict() if self.card is not None else None,
        }


REGISTRY: dict[str, MethodSpec] = {}


def register(
    name: str,
    *,
    family: str,
    requires: tuple[str, ...] = (),
    tasks: tuple[str, ...] = ("classification", "regression"),
    params: tuple[Param, ...] = (),
    description: str = "",
    references: tuple[str, ...] = (),
    reading: str = "positive",
    applies: Callable[[object], str | None] | None = None,
    card: MethodCard | None = None,
    imports: tuple[str, ...] = (),
) -> Callable[[Callable], Callable]:
    """Decorator: add ``fn`` to the registry under ``name``.  ``applies(model)``: why the method
    cannot explain ``model`` (None: it can), for what the capabilities and tasks do not say;
    ``card``: what it computes, needs, cannot show, how it fails and costs (every built-in
    method has one: the app, ``xai methods --cards`` and docs/methods.md show it); ``imports``: the
    heavy modules ``fn`` imports when it runs (captum, zennit), kept out of listing the methods and
    imported by ``explain`` before the method's seconds are counted."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}")
    if isinstance(imports, str):
        raise TypeError(f"imports takes module names, a tuple: ({imports!r},)")
    if reading not in READINGS:
        raise ValueError(f"reading must be one of {READINGS}")

    def add(fn: Callable) -> Callable:
        if name in REGISTRY:
            raise ValueError(f"method {name!r} is registered twice")
        REGISTRY[name] = MethodSpec(
            name,
            fn,
            family,
            frozenset(requires),
            frozenset(tasks),
            tuple(params),
            description or (fn.__doc__ or "").strip().split("\n")[0],
            tuple(references),
            reading,
            applies,
            card,
            tuple(imports),
        )
        _link_references(fn, tuple(references))
        return fn

    return add


def _link_references(fn: Callable, references: tuple[str, ...]) -> None:
    """End ``fn``'s docstring with its references and their links, indented as the docstring is,
    so that ``help(fn)`` names where each is written out in full."""
    section = references_section(references)
    doc = fn.__doc__ or ""
    if not section or "References (full entries" in doc:
        return
    body = [line for line in doc.splitlines()[1:] if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in body), default=0)
    fn.__doc__ = doc.rstrip() + "\n\n" + "".join(" " * indent + line + "\n" for line in section.splitlines())


def get_method(name: str) -> MethodSpec:
    _load_builtin_methods()
    if name not in REGISTRY:
        raise MethodError(f"unknown method {name!r}; available: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def method_specs(model=None) -> list[MethodSpec]:
    """Every registered method, or only those ``model`` supports."""
    _load_builtin_methods()
    specs = sorted(REGISTRY.values(), key=lambda s: (FAMILIES.index(s.family), s.name))
    if model is None:
        return specs
    return [s for s in specs if s.unavailable_reason(model) is None]


def list_methods(model=None) -> list[str]:
    """Names of the methods usable with ``model`` (all of them without a model)."""
    return [s.name for s in method_specs(model)]


def method_modules() -> list[str]:
    """The method modules: every module at the top of ``xai_core.methods``, and the ``method``
    module of each sub-package outside this one (``lrp.method``); importing them registers the
    methods.  The modules a sub-package's method is made of (``lrp.rules``, which imports zennit
    and torchvision, a second) are imported when the method runs, not when methods are listed."""
    package = importlib.import_module(METHODS_PACKAGE)
    names = []
    for found in pkgutil.iter_modules(package.__path__):
        name = f"{METHODS_PACKAGE}.{found.name}"
        if name == MACHINERY:
            continue
        if found.ispkg:
            name += ".method"
            if importlib.util.find_spec(name) is None:
                raise ImportError(f"{name.rsplit('.', 1)[0]} is a package of methods without a method module "
                                  "(method.py, where its methods are registered)")  # fmt: skip
        names.append(name)
    return sorted(names)


_loaded = False


def _load_builtin_methods() -> None:
    """Import every method module once (each registers its methods on import)."""
    global _loaded
    if not _loaded:
        for name in method_modules():
            importlib.import_module(name)
        _loaded = True
