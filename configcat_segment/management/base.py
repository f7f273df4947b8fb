"""What the app's management commands share: JSON output and one-line errors."""

from __future__ import annotations

import argparse
import json
import math
import sys
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from ..models import SegmentConnection
from ..text import is_clean


class OneLineParser(CommandParser):
    """Argument errors as one line naming the problem, without the usage block."""

    def error(self, message: str) -> NoReturn:
        if not self.called_from_command_line:
            raise CommandError(f"Error: {message}")
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


class JSONCommand(BaseCommand):
    """A command that prints one JSON object on stdout."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineParser
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        for name, value in [*((None, arg) for arg in args), *options.items()]:
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str) and not is_clean(text):
                    where = f"--{name.replace('_', '-')}: " if name else ""
                    raise CommandError(
                        f"{where}give text: {text!r} has a NUL character or bytes that are "
                        "not UTF-8."
                    )
        return super().execute(*args, **options)

    def emit(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2))


def one_line(error: ValidationError, option_names: dict[str, str] | None = None) -> str:
    """A ValidationError as one line, naming each field as the command's option."""
    names = option_names or {}
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for field, errors in error.message_dict.items():
        label = names.get(field, f"--{field.replace('_', '-')}") if field != "__all__" else ""
        text = " ".join(errors)
        parts.append(f"{label}: {text}" if label else text)
    return "; ".join(parts)


def whole_number(lowest: int, highest: int) -> Callable[[str], int]:
    """An argument type: a whole number from ``lowest`` to ``highest``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = lowest - 1
        if not lowest <= number <= highest:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {lowest} to {highest}, not {value!r}"
            )
        return number

    return parse


def seconds(highest: float) -> Callable[[str], float]:
    """An argument type: a number of seconds, more than 0 and at most ``highest``."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not 0 < number <= highest:  # NaN fails too
            raise argparse.ArgumentTypeError(
                f"must be a number of seconds, more than 0 and at most {highest:g}, not {value!r}"
            )
        return number

    return parse


def get_connection(id_or_name: str) -> SegmentConnection:
    """Find a connection by its UUID or its exact name, or raise a one-line CommandError."""
    value = id_or_name.strip()
    if not value:
        raise CommandError("Give a Segment connection's id or name, not an empty value.")
    try:
        pk = uuid.UUID(value)
    except ValueError:
        found = SegmentConnection.objects.filter(name=value).first()
    else:
        found = SegmentConnection.objects.filter(pk=pk).first()
    if found is None:
        raise CommandError(f"No Segment connection has the id or name {value!r}.")
    return found
