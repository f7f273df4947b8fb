"""The admin form for a Segment connection: secrets are write-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import SegmentConnection
from .redaction import redact

SECRET_FIELDS = SegmentConnection.SECRET_FIELDS
# Secrets that may be removed (a connection always has its write key), each with a box.
REMOVABLE_SECRETS = ("signing_key", "signing_key_secondary")
REMOVE_BOXES = tuple(f"clear_{name}" for name in REMOVABLE_SECRETS)

# The form's fields, in the groups the admin shows them in.
SEGMENT_FIELDS = ("name", "write_key", "region", "custom_endpoint")
CONFIGCAT_FIELDS = (
    *SegmentConnection.PRODUCT_FIELDS,
    "signing_key",
    "clear_signing_key",
    "signing_key_secondary",
    "clear_signing_key_secondary",
)


class SecretInput(forms.PasswordInput):
    """Never renders the stored value, and asks password managers to stay away."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            attrs={"autocomplete": "new-password", "spellcheck": "false", **(attrs or {})},
            render_value=False,
        )


class SegmentConnectionForm(forms.ModelForm):
    write_key = forms.CharField(label=_("Write key"), required=False, widget=SecretInput())
    signing_key = forms.CharField(
        label=_("Webhook signing key"), required=False, widget=SecretInput()
    )
    signing_key_secondary = forms.CharField(
        label=_("Second webhook signing key"), required=False, widget=SecretInput()
    )
    clear_signing_key = forms.BooleanField(label=_("Remove this key"), required=False)
    clear_signing_key_secondary = forms.BooleanField(label=_("Remove this key"), required=False)

    class Meta:
        model = SegmentConnection
        fields = [*SEGMENT_FIELDS, *CONFIGCAT_FIELDS, *SegmentConnection.FORWARDING_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding
        for name in SECRET_FIELDS:
            # The stored secret must not travel to the page, not even as an initial value.
            self.initial.pop(name, None)
            stored = "" if adding else getattr(self.instance, name)
            field = self.fields[name]
            if stored:
                field.help_text = _("Stored key ends with %(hint)s. Leave blank to keep it.") % {
                    "hint": redact(stored)
                }
            elif name == "write_key":
                field.help_text = _(
                    "From the Segment source's settings page: API Keys → Write Key."
                )
            else:
                field.help_text = _(
                    "From the webhook's page in ConfigCat (starts with configcat_whsk_). "
                    "Without a key, webhooks are refused."
                )
        self.fields["write_key"].required = adding
        for name in REMOVABLE_SECRETS:
            if adding or not getattr(self.instance, name):
                del self.fields[f"clear_{name}"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        adding = self.instance._state.adding
        for name in SECRET_FIELDS:
            typed = (cleaned.get(name) or "").strip()
            if cleaned.get(f"clear_{name}"):
                if typed:
                    self.add_error(
                        name, _("Either remove the stored key or enter a new one, not both.")
                    )
                    continue
                cleaned[name] = ""
            elif not typed and not adding:
                cleaned[name] = getattr(self.instance, name)
            else:
                cleaned[name] = typed
        return cleaned
