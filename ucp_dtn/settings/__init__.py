"""Settings tables: one declarative entry per setting gives a program its flags, its TOML file
checks, its environment variables, the merge order and the help (see :mod:`.table`), with
values written in :mod:`convergence.quantities`' grammar (see :mod:`.kinds`).

Light on purpose: importing it loads no trio, agent or wasmtime, so ``ucp --help`` stays fast.
"""

from .kinds import (
    ADDRESS,
    BOOL,
    COUNT,
    DURATION,
    INTERFACE,
    NODE_ID,
    PATH,
    PEER,
    POSITIVE_DURATION,
    POSITIVE_INT,
    PROBABILITY,
    SERVICE_TYPE,
    SIZE,
    TEXT,
    WHOLE_SECONDS,
    FlagStyle,
    Kind,
    argument_type,
    toml_type_name,
)
from .table import ResolvedSettings, Setting, SettingsError, SettingsTable, flag_of

__all__ = [
    "ADDRESS",
    "BOOL",
    "COUNT",
    "DURATION",
    "INTERFACE",
    "NODE_ID",
    "PATH",
    "PEER",
    "POSITIVE_DURATION",
    "POSITIVE_INT",
    "PROBABILITY",
    "SERVICE_TYPE",
    "SIZE",
    "TEXT",
    "WHOLE_SECONDS",
    "FlagStyle",
    "Kind",
    "ResolvedSettings",
    "Setting",
    "SettingsError",
    "SettingsTable",
    "argument_type",
    "flag_of",
    "toml_type_name",
]
