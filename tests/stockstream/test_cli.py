"""Every entry point answers `--help` without starting work, and refuses bad configuration and
unknown arguments in one line on stderr with exit status 2, never a traceback or a secret
(stockstream/cli.py). The first tests run the real commands as subprocesses; the rest check
the helper's formatting."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import time as time_of_day
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from dataflows.leaders.local import LocalRunSettings
from dataflows.leaders.settings import DataflowSettings
from dataflows.leaders.show import RedisClientSettings
from services.ingest.settings import IngestSettings
from services.operator.settings import OperatorSettings
from services.replay.settings import ReplaySettings
from stockstream.cli import (
    OneLineArgumentParser,
    check_arguments,
    configuration_problems,
    default_text,
    env_names,
    read_settings,
    redact,
    settings_help,
    type_text,
)
from stockstream.create_topics import TopicsSettings
from stockstream.log_index import LogIndexSettings
from stockstream.monitoring.alert_receiver import AlertReceiverSettings

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent
ENTRYPOINT = REPO / "deploy" / "docker" / "dataflow-entrypoint.sh"
SECRET = "hunter2"
SECRET_REDIS_URL = f"redis://u:{SECRET}@127.0.0.1:1/0"
# A command that started work (a broker wait, a server, a replay) runs well past this.
HELP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class EntryPoint:
    """One command, its settings class (None: it has none), and environments it refuses."""

    prog: str
    argv: tuple[str, ...]
    settings: type[BaseSettings] | None
    bad_env: dict[str, str] = field(default_factory=dict)
    required_args: tuple[str, ...] = ()  # positional arguments that come before any setting


def module(name: str) -> tuple[str, ...]:
    return (PYTHON, "-m", name)


ENTRY_POINTS = {
    "dataflow": EntryPoint(
        "stockstream leaders",
        module("dataflows.leaders"),
        DataflowSettings,
        {
            "METRICS_PORT": "99999",
            "TOP_N": "0",
            "REDIS_URL": f"redis://u:{SECRET}@127.0.0.1:port/0",
        },
    ),
    "ingest": EntryPoint(
        "stockstream ingest",
        module("services.ingest"),
        IngestSettings,
        {
            "METRICS_PORT": "99999",
            "SHARD_COUNT": "many",
            "KAFKA_EXTRA_CONFIG": f'{{"sasl.password": "{SECRET}", "n": 5}}',
        },
    ),
    "replay": EntryPoint(
        "stockstream replay",
        module("services.replay"),
        ReplaySettings,
        {"METRICS_PORT": "99999", "REPLAY_SPEED": "-1"},
    ),
    "replay-script": EntryPoint(
        "stockstream replay",
        (str(VENV_BIN / "stockstream-replay"),),
        ReplaySettings,
        {"KAFKA_EXTRA_CONFIG": f'{{"sasl.password": "{SECRET}"'},
    ),
    "operator": EntryPoint(
        "stockstream operator",
        module("services.operator"),
        OperatorSettings,
        {"METRICS_PORT": "99999", "HEALTH_PORT": "abc"},
    ),
    "create-topics": EntryPoint(
        "stockstream create-topics",
        module("stockstream.create_topics"),
        TopicsSettings,
        {"METRICS_PORT": "99999", "TICKS_PARTITIONS": "0"},
    ),
    "local": EntryPoint(
        "stockstream local",
        module("dataflows.leaders.local"),
        LocalRunSettings,
        {"PROCESSES": "abc", "REDIS_URL": f"http://u:{SECRET}@127.0.0.1:1/0"},
    ),
    "leaders": EntryPoint(
        "stockstream-leaders",
        module("dataflows.leaders.show"),
        RedisClientSettings,
        {"REDIS_URL": f"http://u:{SECRET}@127.0.0.1:1/0"},
    ),
    "leaders-script": EntryPoint(
        "stockstream-leaders",
        (str(VENV_BIN / "stockstream-leaders"),),
        RedisClientSettings,
        {"REDIS_URL": f"rediss://u:{SECRET}@127.0.0.1:x/0"},
    ),
    "clear-window": EntryPoint(
        "stockstream-leaders clear-window",
        module("dataflows.leaders.clear_window"),
        RedisClientSettings,
        {"REDIS_URL": f"unix:/u:{SECRET}@/tmp/redis.sock"},
        required_args=("1m", "--yes"),
    ),
    "alert-receiver": EntryPoint(
        "stockstream alert-receiver",
        module("stockstream.monitoring.alert_receiver"),
        AlertReceiverSettings,
        {"LISTEN_PORT": "0"},
    ),
    "log-index": EntryPoint(
        "stockstream log-index",
        module("stockstream.log_index"),
        LogIndexSettings,
        {"LOG_RETENTION_DAYS": "0", "ES_URL": f"http://u:{SECRET}@127.0.0.1:x"},
        required_args=("prune",),
    ),
    "crd": EntryPoint("stockstream crd", module("services.operator.crd"), None),
    "redis-acl": EntryPoint("stockstream redis-acl", module("stockstream.redis_acl"), None),
    "grafana": EntryPoint("stockstream grafana", module("stockstream.monitoring.grafana"), None),
}
WITH_SETTINGS = [name for name, entry in ENTRY_POINTS.items() if entry.settings is not None]


def run(
    argv: tuple[str, ...],
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`argv` with a clean environment (no settings but `env`) that points at nothing."""
    full = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "REDIS_URL": SECRET_REDIS_URL,
        "KUBECONFIG": "/nonexistent",
        **(env or {}),
    }
    return subprocess.run(
        argv,
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=HELP_TIMEOUT_S,
        check=False,
    )


def expected_names(settings: type[BaseSettings]) -> list[set[str]]:
    """Per field, the variable names that read it: the upper-cased name or its aliases."""
    names = []
    for name, info in settings.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias or name]
        names.append({str(choice).upper() for choice in choices})
    return names


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_lists_the_settings_and_starts_nothing(name: str) -> None:
    entry = ENTRY_POINTS[name]
    started = time.monotonic()
    proc = run((*entry.argv, "--help"))
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < HELP_TIMEOUT_S / 2
    assert proc.stderr == ""  # nothing logged, nothing connected
    assert "--help" in proc.stdout
    if entry.settings is not None:
        for names in expected_names(entry.settings):
            assert any(n in proc.stdout for n in names), f"{names} missing from --help"
    assert SECRET not in proc.stdout  # the help shows defaults, never the values set


@pytest.mark.parametrize(
    "argv", [(*module("dataflows.leaders"), "--help"), ("--help",)], ids=["command", "bare"]
)
def test_the_dataflow_wrapper_passes_help_through(argv: tuple[str, ...]) -> None:
    """deploy/docker/dataflow-entrypoint.sh execs the command it is given with its arguments
    (and `dataflow-entrypoint --help` is the dataflow's own); --help answers without
    joining a cluster, also where no pod name gives a process id."""
    path = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"  # `python` is the image's
    proc = run(("sh", str(ENTRYPOINT), *argv), {"POD_NAME": "not-a-pod", "PATH": path})
    assert proc.returncode == 0, proc.stderr
    assert "WINDOW_LENGTHS_S" in proc.stdout


@pytest.mark.parametrize("name", WITH_SETTINGS)
def test_bad_configuration_is_one_line_without_secrets(name: str) -> None:
    entry = ENTRY_POINTS[name]
    proc = run((*entry.argv, *entry.required_args), entry.bad_env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{entry.prog}: bad configuration: ")
    for variable in entry.bad_env:
        assert variable in lines[0]
    assert "Traceback" not in proc.stderr and SECRET not in proc.stderr + proc.stdout


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_unknown_arguments_are_one_line(name: str) -> None:
    entry = ENTRY_POINTS[name]
    proc = run((*entry.argv, *entry.required_args, f"--no-such-option={SECRET_REDIS_URL}"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{entry.prog}: "), proc.stderr
    assert "--no-such-option" in lines[0] and "see --help" in lines[0]
    assert SECRET not in proc.stderr


# The helper's formatting, in process.


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Sample(BaseSettings):
    """A settings class with one field of each shape the entry points use."""

    model_config = SettingsConfigDict(env_prefix="cli_test_", extra="ignore", frozen=True)

    port: int = Field(9100, ge=0, le=65535, description="A port.")
    colour: Colour = Field(Colour.RED, description="A choice.")
    start: time_of_day | None = Field(None, description="Optional.")
    retries: int = Field(3, validation_alias=AliasChoices("cli_test_retries", "cli_test_tries"))
    file: Path | None = None
    lengths: tuple[int, ...] = Field((60, 300), description="A JSON list.")
    extra_config: dict[str, str] = Field(default_factory=dict, description="JSON object. " * 20)
    flag: bool = False
    label: str = ""
    token: str = Field(description="Required, and a secret.")

    @model_validator(mode="after")
    def _check(self) -> Sample:
        if self.port == 1:
            raise ValueError("CLI_TEST_PORT 1 is reserved")
        return self


def sample_error(**values: Any) -> ValidationError | SettingsError:
    """The error `Sample(**values)` raises, with the environment."""
    try:
        Sample(**values)
    except (ValidationError, SettingsError) as error:
        return error
    raise AssertionError("no error")


def test_type_and_default_texts() -> None:
    fields = Sample.model_fields
    assert [type_text(fields[n].annotation) for n in fields] == [
        "int",
        "red | blue",
        "time | None",
        "int",
        "Path | None",
        "tuple[int, ...]",
        "dict[str, str]",
        "bool",
        "str",
        "str",
    ]
    assert [default_text(fields[n]) for n in fields] == [
        "9100",
        "red",
        "unset",
        "3",
        "unset",
        "[60, 300]",
        "{}",
        "false",
        '""',
        "required",
    ]


def test_env_names_follow_prefix_and_aliases() -> None:
    fields = Sample.model_fields
    assert env_names(Sample, "port", fields["port"]) == ("CLI_TEST_PORT",)
    assert env_names(Sample, "retries", fields["retries"]) == ("CLI_TEST_RETRIES", "CLI_TEST_TRIES")


def test_settings_help_lists_every_field_within_the_line_length() -> None:
    text = settings_help(Sample)
    assert "  CLI_TEST_PORT  (int, default 9100)\n      A port.\n" in text
    assert "  CLI_TEST_RETRIES or CLI_TEST_TRIES  (int, default 3)\n  CLI_TEST_FILE" in text
    assert text.endswith("  CLI_TEST_TOKEN  (str, default required)\n      Required, and a secret.")
    assert all(len(line) <= 100 for line in text.splitlines() if line.startswith("      "))
    assert text.count("JSON object.") == 20


def test_problems_name_the_variables_never_the_values() -> None:
    error = sample_error(port="99999", token=SECRET, lengths=[1, SECRET])
    assert configuration_problems(Sample, error) == (
        "CLI_TEST_PORT: Input should be less than or equal to 65535; CLI_TEST_LENGTHS: Input "
        "should be a valid integer, unable to parse string as an integer"
    )
    assert configuration_problems(Sample, sample_error()) == "CLI_TEST_TOKEN: Field required"
    model_level = sample_error(port="1", token=SECRET)
    assert configuration_problems(Sample, model_level) == "CLI_TEST_PORT 1 is reserved"
    aliased = sample_error(cli_test_tries=SECRET, token=SECRET, colour="green")
    assert configuration_problems(Sample, aliased) == (
        "CLI_TEST_COLOUR: Input should be 'red' or 'blue'; CLI_TEST_RETRIES or CLI_TEST_TRIES: "
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_unparsable_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_EXTRA_CONFIG", f'{{"sasl.password": "{SECRET}"')
    error = sample_error(token=SECRET)
    assert isinstance(error, SettingsError)
    assert configuration_problems(Sample, error) == "CLI_TEST_EXTRA_CONFIG: not valid JSON"


def test_read_settings_exits_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLI_TEST_PORT", "-1")
    with pytest.raises(SystemExit) as exit_info:
        read_settings(Sample, "stockstream sample", token=SECRET)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "stockstream sample: bad configuration: CLI_TEST_PORT: Input should be greater than or "
        "equal to 0\n"
    )
    monkeypatch.setenv("CLI_TEST_PORT", "80")
    assert read_settings(Sample, "stockstream sample", token=SECRET).port == 80


def test_check_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        check_arguments(
            "stockstream sample",
            "`sample`: a sample.\n\n        example\n    more\n",
            ["-h"],
            Sample,
            flags={"--check": "check only"},
        )
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("`sample`: a sample.\n\n    example\nmore\n\noptions:\n")
    assert "  --check     check only\n" in out and "\n  CLI_TEST_PORT  (int" in out
    check_arguments("stockstream sample", None, ["--check"], flags={"--check": "check only"})
    with pytest.raises(SystemExit) as exit_info:
        check_arguments("stockstream sample", None, ["--port=1"], Sample)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "stockstream sample: unexpected argument '--port'; settings are environment variables, "
        "see --help\n"
    )


def test_one_line_argument_parser(capsys: pytest.CaptureFixture[str]) -> None:
    parser = OneLineArgumentParser(prog="stockstream-sample")
    parser.add_argument("--watch", type=float)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--watch", "x", SECRET_REDIS_URL])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stockstream-sample: ") and SECRET not in err
    assert isinstance(parser, argparse.ArgumentParser)


def test_redact() -> None:
    assert redact(f"at {SECRET_REDIS_URL} and rediss://:{SECRET}@h:6380") == (
        "at redis://***@127.0.0.1:1/0 and rediss://***@h:6380"
    )
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
