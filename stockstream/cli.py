"""The command line of every stockstream entry point: `--help`, and bad configuration in one line.

A component is configured by one pydantic-settings object read from environment variables
(field `metrics_port` is `METRICS_PORT`, see stockstream/settings.py). Its entry point calls
`load_settings` before anything else, which

- answers `-h` / `--help` with the module's docstring and every setting (variable name, type,
  default, description; the defaults, never the values set), exit status 0, before anything
  connects, listens or logs;
- refuses any other argument in one line on stderr, exit status 2;
- turns a settings error into one line on stderr, exit status 2, e.g.

      stockstream ingest: bad configuration: METRICS_PORT: Input should be less than or equal
      to 65535

  naming each variable with pydantic's message and never the value given: values can be
  secrets (a Redis URL with its password, KAFKA_EXTRA_CONFIG with SASL credentials, a token).

Settings are not command-line flags: the environment stays the one source (the Kubernetes
manifests set it), so no value has two places and a precedence between them. pydantic-settings'
own CLI support was not used for `--help` because it lists flags (`--metrics_port`), not the
variables people set. Entry points with argparse options (`stockstream-leaders`) use
`OneLineArgumentParser`, list the settings in their help with `settings_help` and read them
with `read_settings`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, NoReturn, TypeVar

from pydantic import AliasChoices, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings
from pydantic_settings.exceptions import SettingsError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

HELP_FLAGS = ("-h", "--help")
USAGE_ERROR = 2  # exit status of a bad argument or setting, as argparse's
_URL_CREDENTIALS = re.compile(r"(\w[\w+.-]*://)[^/@\s]*@")
# pydantic-settings' SettingsError when a list or dict variable is not JSON names only the field.
_UNPARSABLE_FIELD = re.compile(r'error parsing value for field "(\w+)"')


def redact(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by `***`."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def env_names(settings_cls: type[BaseSettings], name: str, field: FieldInfo) -> tuple[str, ...]:
    """The environment variables field `name` is read from (aliases, else prefix + name)."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return (alias.upper(),)
    if isinstance(alias, AliasChoices):
        return tuple(choice.upper() for choice in alias.choices if isinstance(choice, str))
    return (f"{settings_cls.model_config.get('env_prefix', '')}{name}".upper(),)


def type_text(annotation: Any) -> str:
    """A field's type as a reader wants it: `int | None`, `Path`, `replay | simulate`."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(str(member.value) for member in annotation)
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", repr(annotation))  # pathlib.Path -> Path


def default_text(field: FieldInfo) -> str:
    """A field's default as the variable would be written (lists and dicts as JSON)."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list | dict):
        return json.dumps(value)
    return str(value) or '""'


def settings_help(settings_cls: type[BaseSettings]) -> str:
    """Every setting of `settings_cls`: variable name(s), type, default and description."""
    lines = ["settings (environment variables, names case-insensitive):"]
    for name, field in settings_cls.model_fields.items():
        names = " or ".join(env_names(settings_cls, name, field))
        lines.append(f"  {names}  ({type_text(field.annotation)}, default {default_text(field)})")
        if field.description:
            lines.append(
                textwrap.fill(
                    field.description, width=100, initial_indent=" " * 6, subsequent_indent=" " * 6
                )
            )
    return "\n".join(lines)


def help_text(
    summary: str | None, settings_cls: type[BaseSettings] | None, flags: Mapping[str, str]
) -> str:
    """The `--help` page: the summary, the options and, when there is one, the settings."""
    options = {"-h, --help": "show this help and exit", **flags}
    width = max(map(len, options))
    parts = [
        inspect.cleandoc(summary or ""),
        "options:\n" + "\n".join(f"  {flag:<{width}}  {text}" for flag, text in options.items()),
    ]
    if settings_cls is not None:
        parts.append(settings_help(settings_cls))
    return "\n\n".join(parts) + "\n"


def fail(prog: str, message: str) -> NoReturn:
    """One line `prog: message` on stderr (URL credentials redacted), exit status 2."""
    print(redact(f"{prog}: {message}"), file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def check_arguments(
    prog: str,
    summary: str | None,
    argv: Sequence[str] | None = None,
    settings_cls: type[BaseSettings] | None = None,
    flags: Mapping[str, str] | None = None,
) -> None:
    """Answer `--help` (exit 0), refuse any argument other than `flags` (exit 2)."""
    args = sys.argv[1:] if argv is None else argv
    if any(arg in HELP_FLAGS for arg in args):
        sys.stdout.write(help_text(summary, settings_cls, flags or {}))
        raise SystemExit(0)
    hint = "settings are environment variables, see --help" if settings_cls else "see --help"
    for arg in args:
        if arg not in (flags or {}):
            shown = arg.split("=", 1)[0]  # an option's name, never its value
            fail(prog, f"unexpected argument {shown!r}; {hint}")


def configuration_problems(
    settings_cls: type[BaseSettings], error: ValidationError | SettingsError
) -> str:
    """What is wrong, by variable name, joined by '; ' (never the values given)."""
    names = {
        alias.lower(): " or ".join(env_names(settings_cls, name, field))
        for name, field in settings_cls.model_fields.items()
        for alias in (name, *env_names(settings_cls, name, field))
    }
    if isinstance(error, SettingsError):
        unparsable = _UNPARSABLE_FIELD.search(str(error))
        if unparsable is None:
            return "the settings could not be read"
        return f"{names.get(unparsable[1], unparsable[1].upper())}: not valid JSON"
    problems = []
    for detail in error.errors(include_url=False, include_input=False, include_context=False):
        message = detail["msg"].removeprefix("Value error, ")
        location = detail["loc"]
        if location:
            field = str(location[0])
            message = f"{names.get(field.lower(), field.upper())}: {message}"
        problems.append(message)
    return "; ".join(dict.fromkeys(problems))


def read_settings(settings_cls: type[SettingsT], prog: str, **overrides: Any) -> SettingsT:
    """`settings_cls(**overrides)` from the environment; a bad setting exits in one line."""
    try:
        return settings_cls(**overrides)
    except (ValidationError, SettingsError) as error:
        fail(prog, f"bad configuration: {configuration_problems(settings_cls, error)}")


def load_settings(
    settings_cls: type[SettingsT], prog: str, summary: str | None, argv: Sequence[str] | None = None
) -> SettingsT:
    """An entry point's start: `check_arguments`, then `read_settings`."""
    check_arguments(prog, summary, argv, settings_cls)
    return read_settings(settings_cls, prog)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog, f"{message} (see --help)")
