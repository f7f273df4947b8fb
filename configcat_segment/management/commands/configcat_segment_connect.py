from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from ...models import SegmentConnection
from ...segment.regions import InvalidEndpoint, parse_region
from ...serializers import connection_json
from ..base import JSONCommand, one_line

OPTION_NAMES = {
    "custom_endpoint": "--region",
    "signing_key": "--signing-key",
    "signing_key_secondary": "--signing-key (second)",
    "configcat_api_user": "--configcat-api-user",
    "configcat_api_password": "--configcat-api-password",
}


class Command(JSONCommand):
    help = (
        "Connect a Segment source: store its write key and region, and print the new "
        "connection as JSON, with the webhook path to give ConfigCat."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="A unique name, e.g. 'Production'.")
        parser.add_argument("--write-key", required=True, help="The Segment source's write key.")
        parser.add_argument(
            "--region",
            required=True,
            metavar="us|eu|URL",
            help="Segment's US or EU region, or the base URL of a Segment-compatible API.",
        )
        parser.add_argument("--product-id", default="", help="The ConfigCat product id.")
        parser.add_argument("--product-name", default="", help="The ConfigCat product name.")
        parser.add_argument(
            "--signing-key",
            action="append",
            default=[],
            metavar="KEY",
            help="A ConfigCat webhook signing key; give it twice while rotating keys.",
        )
        parser.add_argument(
            "--configcat-api-user",
            default="",
            metavar="USERNAME",
            help="A ConfigCat Public API credential's username: with --product-id, changes "
            "no webhook delivered are read from the audit log and forwarded.",
        )
        parser.add_argument(
            "--configcat-api-password",
            default="",
            metavar="PASSWORD",
            help="That credential's password.",
        )
        parser.add_argument(
            "--no-changes", action="store_true", help="Do not forward flag changes."
        )
        parser.add_argument(
            "--no-evaluations", action="store_true", help="Do not forward flag evaluations."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        signing_keys = [key.strip() for key in options["signing_key"]]
        if not all(signing_keys):  # an empty key would silently mean no key
            raise CommandError("--signing-key: give a key, not an empty value.")
        if len(signing_keys) > 2:
            raise CommandError("--signing-key: give at most two keys (a primary and a second one).")
        api_user = options["configcat_api_user"].strip()
        api_password = options["configcat_api_password"].strip()
        if bool(api_user) != bool(api_password):
            raise CommandError(
                "--configcat-api-user and --configcat-api-password: give both (a Public API "
                "credential is a username and a password), or neither."
            )
        if api_user and not options["product_id"].strip():
            raise CommandError(
                "--product-id: reading the audit log with the credential needs the product id."
            )
        try:
            region, custom_endpoint = parse_region(options["region"])
        except InvalidEndpoint as exc:
            raise CommandError(f"--region: {exc}") from exc
        connection = SegmentConnection(
            name=options["name"].strip(),
            write_key=options["write_key"].strip(),
            region=region,
            custom_endpoint=custom_endpoint,
            product_id=options["product_id"].strip(),
            product_name=options["product_name"].strip(),
            signing_key=signing_keys[0] if signing_keys else "",
            signing_key_secondary=signing_keys[1] if len(signing_keys) > 1 else "",
            configcat_api_user=api_user,
            configcat_api_password=api_password,
            forward_changes=not options["no_changes"],
            forward_evaluations=not options["no_evaluations"],
        )
        try:
            connection.full_clean()
        except ValidationError as exc:
            raise CommandError(one_line(exc, OPTION_NAMES)) from exc
        connection.save()
        self.emit(connection_json(connection))
