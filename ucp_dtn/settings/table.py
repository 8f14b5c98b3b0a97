"""One table of settings → the command-line flags, the TOML file's checks, the environment, the
merge order and the help, for ``ucp-bpnode`` and ``ucp``.

Theory of operation
-------------------
A program lists its settings once, as :class:`Setting` entries of a :class:`SettingsTable`. An
entry's ``name`` is its TOML key and, with ``_`` and ``.`` written ``-``, its long flag
(``custody_retransmit`` ↔ ``--custody-retransmit``; ``tls.cert`` ↔ ``--tls-cert`` and the key
``cert`` of the TOML table ``[tls]``). Its :class:`~ucp_dtn.settings.kinds.Kind` says how values
are written, and ``feeds`` names the parameter of the object it configures (``"node.keepalive_s"``:
the parameter ``keepalive_s`` of the table's target ``"node"``, e.g. ``NodeConfig``). From that the
table

* adds the flags to an argparse parser, with help that shows the default (read from the target's
  own default, so it is written once) — :meth:`SettingsTable.add_arguments`;
* reads a TOML file strictly: an unknown key is an error naming the file and listing the known
  keys, a value of the wrong type or a malformed one is one line naming the file and the key;
  relative paths are relative to the file — :meth:`SettingsTable.read_file`;
* merges the layers *defaults < file < environment < flags*: a value given in a higher layer
  replaces the lower one (for a repeatable setting the whole list); settings that ``excludes``
  each other may not both be given in one layer, and one given higher drops the other from the
  layers below — :meth:`SettingsTable.resolve`;
* hands each target the arguments it was given — :meth:`ResolvedSettings.arguments` — and
* writes the Markdown table of the docs — :meth:`SettingsTable.markdown`.

Renamed settings keep working: an ``old_names`` entry is accepted as a TOML key and as a flag,
and adds a notice (:attr:`ResolvedSettings.notices`) that the program logs as a warning.

Adding a setting is one entry in the program's table plus the parameter of the object it feeds
(and its use there); nothing else names it. See docs/bpnode.md, "Adding a setting".
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from .kinds import FlagStyle, Kind, argument_type, toml_type_name

__all__ = ["ResolvedSettings", "Setting", "SettingsError", "SettingsTable", "flag_of"]

_NOTICES = "==notices=="
"""Namespace attribute where flags record the old spellings they were given as."""

_UNSET: Any = object()


def _parameters(target: Callable[..., Any]) -> dict[str, Any]:
    """The parameters of a target and their defaults (:data:`_UNSET`: none). A dataclass's
    fields are read directly: its signature hides default factories, and ``inspect`` is slow
    to import."""
    if dataclasses.is_dataclass(target):
        return {
            item.name: item.default
            if item.default is not dataclasses.MISSING
            else (
                item.default_factory()
                if item.default_factory is not dataclasses.MISSING
                else _UNSET
            )
            for item in dataclasses.fields(target)
        }
    import inspect

    return {
        name: _UNSET if parameter.default is inspect.Parameter.empty else parameter.default
        for name, parameter in inspect.signature(target).parameters.items()
    }


class SettingsError(ValueError):
    """The command line, the environment or the configuration file is wrong (one-line message)."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of a program: its name, how it is written, what it feeds."""

    name: str
    """TOML key (``a.b``: key ``b`` of the table ``[a]``); the long flag is ``--`` and the name
    with ``_`` and ``.`` written ``-``."""
    kind: Kind[Any]
    """How its values are written."""
    help: str
    """What it does, for ``--help`` and the docs (the default and "repeatable" are added)."""
    feeds: tuple[str, ...] = ()
    """``"target.parameter"`` entries it is passed to (:meth:`ResolvedSettings.arguments`);
    empty when the program reads it by name (:meth:`ResolvedSettings.get`)."""
    short: str | None = None
    """Short flag (``-n``)."""
    metavar: str | None = None
    """Placeholder of its value in help when the kind's is too general (``DIR`` for a path)."""
    many: bool = False
    """Repeatable: the flag may be given again, the TOML value is an array."""
    collect: Callable[[tuple[Any, ...]], Any] = tuple
    """Turns a repeatable setting's items into its value (``dict`` for ``KEY=VALUE`` items)."""
    default: Any = _UNSET
    """Shown in help; unset: the default of the first parameter it feeds."""
    default_factory: Callable[[], Any] | None = None
    """Computes the value when no layer gives one (passed on like a given value)."""
    default_help: str | None = None
    """The default as help shows it, when the value cannot say it (``all``, ``CPU cores``)."""
    old_names: tuple[str, ...] = ()
    """Earlier names, still accepted (as TOML keys and flags) with a notice."""
    excludes: tuple[str, ...] = ()
    """Settings that may not be given together with this one (checked both ways)."""
    env: str | None = None
    """Environment variable read between the file and the flags (repeatable: comma-separated)."""
    in_file: bool = True
    """May be written in the TOML file."""
    example: str | None = None
    """A value other than the default, as written on the command line (docs and tests)."""


def flag_of(name: str) -> str:
    """The long flag of a setting or old name (``tls.cert`` → ``--tls-cert``)."""
    return "--" + name.replace("_", "-").replace(".", "-")


@dataclass(frozen=True, slots=True)
class ResolvedSettings:
    """The merged settings of one run of a program."""

    values: Mapping[str, Any]
    """Setting name → value, for the settings some layer gave (and ``default_factory`` ones)."""
    table: SettingsTable
    """The table they were resolved from."""
    config_file: Path | None = None
    """The TOML file that was read, if any."""
    notices: tuple[str, ...] = ()
    """Warnings for the user (old names that still work)."""

    def get(self, name: str) -> Any:
        """The value of setting ``name``: given, or its default (``None`` if it has none)."""
        if name in self.values:
            return self.values[name]
        return self.table.default_of(self.table[name])

    def arguments(self, target: str) -> dict[str, Any]:
        """Keyword arguments for ``target``: ``{parameter: value}`` for every setting that feeds
        ``target.parameter`` and has a value; the target's own defaults cover the rest."""
        arguments: dict[str, Any] = {}
        for setting in self.table:
            if setting.name in self.values:
                for feed in setting.feeds:
                    owner, _, parameter = feed.partition(".")
                    if owner == target:
                        arguments[parameter] = self.values[setting.name]
        return arguments


class SettingsTable:
    """The settings of one program; see the module docstring."""

    def __init__(
        self,
        settings: Iterable[Setting],
        *,
        targets: Mapping[str, Callable[..., Any]],
        config: str | None = None,
    ) -> None:
        """``targets`` maps the target names used in ``feeds`` to the classes (or functions)
        they are passed to; ``config`` names the setting whose value is the TOML file."""
        self._settings = {setting.name: setting for setting in settings}
        self._targets = dict(targets)
        self._config = config
        self._by_key: dict[str, tuple[Setting, bool]] = {}
        self._excludes: dict[str, set[str]] = {name: set() for name in self._settings}
        for setting in self:
            for excluded in setting.excludes:
                self._excludes[setting.name].add(excluded)
                self._excludes[self[excluded].name].add(setting.name)
            if setting.in_file:
                self._by_key[setting.name] = (setting, False)
                self._by_key.update((old, (setting, True)) for old in setting.old_names)
            for feed in setting.feeds:
                self._check_feed(setting, feed)
        if config is not None and config not in self._settings:
            raise ValueError(f"config setting {config!r} is not in the table")

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._settings.values())

    def __getitem__(self, name: str) -> Setting:
        try:
            return self._settings[name]
        except KeyError:
            raise KeyError(f"no setting {name!r} in this table") from None

    def __len__(self) -> int:
        return len(self._settings)

    def _check_feed(self, setting: Setting, feed: str) -> None:
        owner_name, _, name = feed.partition(".")
        if owner_name not in self._targets:
            raise ValueError(f"setting {setting.name!r} feeds unknown target {owner_name!r}")
        if name not in _parameters(self._targets[owner_name]):
            raise ValueError(f"setting {setting.name!r} feeds {feed!r}: no such parameter")

    def default_of(self, setting: Setting) -> Any:
        """The default of ``setting``: its own, else that of the first parameter it feeds."""
        if setting.default is not _UNSET:
            return setting.default
        if not setting.feeds:
            return None
        owner, _, name = setting.feeds[0].partition(".")
        default = _parameters(self._targets[owner])[name]
        return None if default is _UNSET else default

    def _default_text(self, setting: Setting) -> str | None:
        if setting.default_help is not None:
            return setting.default_help
        default = self.default_of(setting)
        if default is None or (isinstance(default, tuple | list | Mapping) and not default):
            return None
        if setting.many:
            items = default.items() if isinstance(default, Mapping) else default
            return ", ".join(setting.kind.show(item) for item in items)
        return setting.kind.show(default)

    def help_of(self, setting: Setting) -> str:
        """The help line: the entry's text, then "(repeatable; default X)" as they apply."""
        notes = ["repeatable"] if setting.many else []
        if setting.kind.bounds is not None:
            low, high = (setting.kind.show(bound) for bound in setting.kind.bounds)
            notes.append(f"{low} to {high}")
        default = self._default_text(setting)
        if default is not None:
            notes.append(f"default {default}")
        return setting.help + (f" ({'; '.join(notes)})" if notes else "")

    # -- the command line ----------------------------------------------------------------------

    def add_arguments(self, parser: Any, *, only: Sequence[str] | None = None) -> None:
        """Add the flags of every setting (or of those named in ``only``) to ``parser`` (a
        parser or an argument group). Flags left out stay out of the parsed namespace."""
        for setting in self:
            if only is not None and setting.name not in only:
                continue
            flags = [flag for flag in (setting.short, flag_of(setting.name)) if flag]
            options: dict[str, Any] = {
                "dest": setting.name,
                "default": argparse.SUPPRESS,
                "help": self.help_of(setting).replace("%", "%%"),
            }
            if setting.kind.flag is FlagStyle.SWITCH:
                options["action"] = argparse.BooleanOptionalAction
            elif setting.kind.flag is FlagStyle.COUNT:
                options["action"] = "count"
            else:
                options["action"] = "append" if setting.many else "store"
                options["type"] = argument_type(setting.kind.read_text)
                options["metavar"] = setting.metavar or setting.kind.metavar
            action = parser.add_argument(*flags, **options)
            for old in setting.old_names:
                old_flags = [flag_of(old)]
                if setting.kind.flag is FlagStyle.SWITCH:
                    old_flags.append("--no-" + flag_of(old)[2:])
                parser.add_argument(*old_flags, action=_OldSpelling, target=action)

    def from_namespace(self, namespace: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
        """The flag layer: the values of the flags given, and the notices for old spellings."""
        given = vars(namespace)
        values = {}
        for setting in self:
            if setting.name in given:
                value = given[setting.name]
                if setting.kind.flag is FlagStyle.COUNT:  # (no argument went through the kind)
                    try:
                        setting.kind.check(value)
                    except ValueError as exc:
                        flags = "/".join(filter(None, (setting.short, flag_of(setting.name))))
                        raise SettingsError(f"{flags}: given {value} times: {exc}") from None
                values[setting.name] = setting.collect(tuple(value)) if setting.many else value
        return values, list(given.get(_NOTICES, ()))

    # -- the environment -----------------------------------------------------------------------

    def from_environment(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The environment layer: settings with an ``env`` variable that is set and not empty."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in self:
            text = environ.get(setting.env or "", "").strip()
            if not setting.env or not text:
                continue
            try:
                if setting.many:
                    items = [item.strip() for item in text.split(",") if item.strip()]
                    values[setting.name] = setting.collect(
                        tuple(setting.kind.read_text(item) for item in items)
                    )
                else:
                    values[setting.name] = setting.kind.read_text(text)
            except ValueError as exc:
                raise SettingsError(f"${setting.env}: {exc}") from None
        return values

    # -- the file ------------------------------------------------------------------------------

    def read_file(self, path: Path) -> tuple[dict[str, Any], list[str]]:
        """The file layer: the settings of the TOML file ``path``, and notices for old keys."""
        from .toml_file import TomlError, load_toml  # (only programs reading a file pay for it)

        try:
            document = load_toml(path)
        except TomlError as exc:
            raise SettingsError(f"{path}: {exc}") from None
        reader = _FileReader(self, path)
        reader.read_table(document, prefix="")
        return reader.values, reader.notices

    def file_keys(self, prefix: str = "") -> list[str]:
        """The TOML keys of the table ``prefix`` (``""``: the top level; ``"tls."``...), current
        names only, in table order."""
        keys: list[str] = []
        for setting in self:
            if setting.in_file and setting.name.startswith(prefix):
                key = prefix + setting.name[len(prefix) :].split(".")[0]
                if key not in keys:
                    keys.append(key)
        return keys

    def key_of(self, key: str) -> tuple[Setting, bool] | None:
        """The setting written as TOML key ``key`` and whether ``key`` is an old name."""
        return self._by_key.get(key)

    # -- merging -------------------------------------------------------------------------------

    def resolve(
        self,
        parser: argparse.ArgumentParser,
        argv: Sequence[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ResolvedSettings:
        """Parse ``argv`` with ``parser`` (built with :meth:`add_arguments`), read the file the
        ``config`` setting names and the environment, and merge them."""
        return self.resolve_namespace(parser.parse_args(argv), environ=environ)

    def resolve_namespace(
        self, namespace: argparse.Namespace, *, environ: Mapping[str, str] | None = None
    ) -> ResolvedSettings:
        """Like :meth:`resolve`, from flags already parsed."""
        flags, notices = self.from_namespace(namespace)
        config_file: Path | None = flags.get(self._config or "")
        file_values: dict[str, Any] = {}
        if config_file is not None:
            file_values, file_notices = self.read_file(config_file)
            notices = file_notices + notices
        layers = [
            _Layer(file_values, f"{config_file}", "file"),
            _Layer(self.from_environment(environ), "", "environment"),
            _Layer(flags, "", "flags"),
        ]
        values = self._merge(layers)
        for setting in self:
            if setting.name not in values and setting.default_factory is not None:
                values[setting.name] = setting.default_factory()
        return ResolvedSettings(values, self, config_file=config_file, notices=tuple(notices))

    def _merge(self, layers: list[_Layer]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        dropped: set[str] = set()
        for layer in reversed(layers):
            taken = [name for name in layer.values if name not in merged and name not in dropped]
            merged.update((name, layer.values[name]) for name in taken)
            chosen = [name for name in taken if layer.values[name] not in (None, False)]
            for index, name in enumerate(chosen):
                for other in chosen[index + 1 :]:
                    if other in self._excludes[name]:
                        raise SettingsError(layer.conflict(self, name, other))
                dropped |= self._excludes[name]
        return merged

    # -- documentation -------------------------------------------------------------------------

    def markdown(self) -> str:
        """The Markdown table of the settings for the docs: flags, TOML key (when the program
        reads a file) and meaning."""
        with_keys = any(setting.in_file for setting in self)
        lines = (
            ["| Flag | File key | Meaning |", "|---|---|---|"]
            if with_keys
            else ["| Flag | Meaning |", "|---|---|"]
        )
        for setting in self:
            flags = [flag for flag in (setting.short, flag_of(setting.name)) if flag]
            if setting.kind.flag is FlagStyle.SWITCH:
                flags.append("--no-" + flag_of(setting.name)[2:])
            metavar = setting.metavar or setting.kind.metavar
            metavar = f" {metavar}" if setting.kind.flag is FlagStyle.VALUE else ""
            cells = [", ".join(f"`{flag}{metavar}`" for flag in flags)]
            if with_keys:
                cells.append(f"`{setting.name}`" if setting.in_file else "—")
            meaning = self.help_of(setting)
            meaning = meaning[0].upper() + meaning[1:] + "."
            if setting.old_names:
                meaning += f" Formerly {', '.join(f'`{old}`' for old in setting.old_names)}."
            if setting.env:
                listed = ", comma-separated" if setting.many else ""
                meaning += f" Environment: `{setting.env}`{listed}."
            cells.append(meaning.replace("|", "\\|"))
            lines.append(f"| {' | '.join(cells)} |")
        return "\n".join(lines) + "\n"


@dataclass(slots=True)
class _Layer:
    """One source of values while merging."""

    values: dict[str, Any]
    origin: str
    what: str

    def conflict(self, table: SettingsTable, first: str, second: str) -> str:
        if self.what == "flags":
            a, b = (
                "/".join(filter(None, (s.short, flag_of(s.name))))
                for s in (table[first], table[second])
            )
            return f"{a} and {b} exclude each other"
        if self.what == "environment":
            return f"${table[first].env} and ${table[second].env} exclude each other"
        a, b = (f"{name} = true" if self.values[name] is True else name for name in (first, second))
        return f"{self.origin}: {a} and {b} exclude each other"


class _OldSpelling(argparse.Action):
    """An old flag: does what its current flag does, and records a notice."""

    def __init__(self, option_strings: list[str], dest: str, *, target: argparse.Action) -> None:
        super().__init__(
            option_strings,
            dest=target.dest,
            nargs=target.nargs,
            const=target.const,
            default=argparse.SUPPRESS,
            type=None if isinstance(target.type, str) else target.type,
            metavar=target.metavar,
            help=argparse.SUPPRESS,
        )
        self.target = target

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        negated = option_string is not None and option_string.startswith("--no-")
        current = next(
            flag
            for flag in self.target.option_strings
            if flag.startswith("--") and flag.startswith("--no-") == negated
        )
        notices: list[str] = list(getattr(namespace, _NOTICES, ()))
        notices.append(f"{option_string} is the old name of {current}: it still works, for now")
        setattr(namespace, _NOTICES, notices)
        self.target(parser, namespace, values, current)


class _FileReader:
    """Reads the settings of one TOML document; errors name the file and the key."""

    def __init__(self, table: SettingsTable, path: Path) -> None:
        self.table = table
        self.path = path
        self.values: dict[str, Any] = {}
        self.notices: list[str] = []
        self._written: dict[str, str] = {}

    def fail(self, key: str, message: str) -> NoReturn:
        raise SettingsError(f"{self.path}: {key}: {message}")

    def read_table(self, document: Mapping[str, Any], *, prefix: str) -> None:
        for name, value in document.items():
            key = prefix + name
            found = self.table.key_of(key)
            if found is not None:
                self._read_setting(key, value, *found)
            elif self.table.file_keys(key + "."):
                if not isinstance(value, dict):
                    self.fail(key, f"must be a table, got {toml_type_name(value)}")
                self.read_table(value, prefix=key + ".")
            else:
                known = ", ".join(self.table.file_keys(prefix))
                raise SettingsError(f"{self.path}: unknown key {key!r} (known: {known})")

    def _read_setting(self, key: str, value: Any, setting: Setting, old: bool) -> None:
        if setting.name in self._written:
            self.fail(key, f"given twice: as {self._written[setting.name]!r} and {key!r}")
        self._written[setting.name] = key
        if old:
            self.notices.append(
                f"{self.path}: {key!r} is the old name of {setting.name!r}: rename it "
                "(it is still read, for now)"
            )
        try:
            if setting.many:
                self.values[setting.name] = setting.collect(self._items(key, value, setting))
            else:
                self.values[setting.name] = self._one(key, value, setting.kind)
        except SettingsError:
            raise
        except ValueError as exc:
            self.fail(key, str(exc))

    def _items(self, key: str, value: Any, setting: Setting) -> tuple[Any, ...]:
        kind = setting.kind
        if isinstance(value, dict) and kind.from_entry is not None:
            return tuple(kind.from_entry(name, item) for name, item in value.items())
        if isinstance(value, list) and all(kind.accepts(item) for item in value):
            return tuple(self._one(key, item, kind) for item in value)
        self.fail(key, f"must be {kind.expected_many}, got {toml_type_name(value)}")

    def _one(self, key: str, value: Any, kind: Kind[Any]) -> Any:
        if not kind.accepts(value):
            self.fail(key, f"must be {kind.expected}, got {toml_type_name(value)}")
        result = kind.read_toml(value)
        if kind.file_relative and isinstance(result, Path) and not result.is_absolute():
            return self.path.parent / result
        return result
