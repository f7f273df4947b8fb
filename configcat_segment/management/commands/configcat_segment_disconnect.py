from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from ...serializers import connection_json
from ..base import JSONCommand, get_connection


class Command(JSONCommand):
    help = (
        "Disconnect a Segment connection: it keeps its history and forwards nothing. "
        "Prints the connection as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("connection", metavar="ID_OR_NAME", help="The connection's id or name.")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = get_connection(options["connection"])
        changed = connection.disconnect()
        self.emit(connection_json(connection, changed=changed))
