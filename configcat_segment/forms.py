"""The admin form for a Segment connection: secrets are write-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .evaluations.policies import FIELD_DEFAULTS
from .models import SegmentConnection
from .redaction import redact

SECRET_FIELDS = SegmentConnection.SECRET_FIELDS
# Secrets that may be removed (a connection always has its write key), each with a box.
REMOVABLE_SECRETS = (
    "signing_key",
    "signing_key_secondary",
    *SegmentConnection.API_CREDENTIAL_FIELDS,
)
REMOVE_BOXES = tuple(f"clear_{name}" for name in REMOVABLE_SECRETS)

# The form's fields, in the groups the admin shows them in.
SEGMENT_FIELDS = ("name", "write_key", "region", "custom_endpoint")
CONFIGCAT_FIELDS = (
    *SegmentConnection.PRODUCT_FIELDS,
    "signing_key",
    "clear_signing_key",
    "signing_key_secondary",
    "clear_signing_key_secondary",
    "configcat_api_user",
    "clear_configcat_api_user",
    "configcat_api_password",
    "clear_configcat_api_password",
)
# What of the evaluations the connection sends (validated by the model's clean()).
EVALUATION_POLICY_FIELDS = tuple(FIELD_DEFAULTS)
EXPOSURE_FIELDS = tuple(f for f in EVALUATION_POLICY_FIELDS if not f.startswith("personal_"))
PERSONAL_DATA_FIELDS = tuple(f for f in EVALUATION_POLICY_FIELDS if f.startswith("personal_"))
HELP_TEXTS = {
    "write_key": _("From the Segment source's settings page: API Keys → Write Key."),
    "signing_key": _(
        "From the webhook's page in ConfigCat (starts with configcat_whsk_). "
        "Without a key, webhooks are refused."
    ),
    "configcat_api_user": _(
        "A ConfigCat Public API credential (Dashboard → My account → Public API "
        "credentials), with the product id: changes no webhook delivered are read from the "
        "product's audit log and forwarded."
    ),
    "configcat_api_password": _("The password of that Public API credential."),
}


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
    configcat_api_user = forms.CharField(
        label=_("ConfigCat Public API username"), required=False, widget=SecretInput()
    )
    configcat_api_password = forms.CharField(
        label=_("ConfigCat Public API password"), required=False, widget=SecretInput()
    )
    clear_signing_key = forms.BooleanField(label=_("Remove this key"), required=False)
    clear_signing_key_secondary = forms.BooleanField(label=_("Remove this key"), required=False)
    clear_configcat_api_user = forms.BooleanField(label=_("Remove it"), required=False)
    clear_configcat_api_password = forms.BooleanField(label=_("Remove it"), required=False)

    class Meta:
        model = SegmentConnection
        fields = [
            *SEGMENT_FIELDS,
            *CONFIGCAT_FIELDS,
            *SegmentConnection.FORWARDING_FIELDS,
            *EVALUATION_POLICY_FIELDS,
        ]
        widgets = {
            name: forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"})
            for name in (
                "flag_allowlist",
                "flag_denylist",
                "flag_exposure_policies",
                "flag_sample_rates",
                "personal_data_attributes",
            )
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding
        for name in SECRET_FIELDS:
            # The stored secret must not travel to the page, not even as an initial value.
            self.initial.pop(name, None)
            stored = "" if adding else getattr(self.instance, name)
            field = self.fields[name]
            if stored:
                stored_text = (
                    _("Stored value ends with %(hint)s. Leave blank to keep it.")
                    if name in SegmentConnection.API_CREDENTIAL_FIELDS
                    else _("Stored key ends with %(hint)s. Leave blank to keep it.")
                )
                field.help_text = stored_text % {"hint": redact(stored)}
            else:
                field.help_text = HELP_TEXTS.get(name, HELP_TEXTS["signing_key"])
        self.fields["write_key"].required = adding
        # A form posted without the evaluation policies (a script written before they
        # existed) keeps the connection's: omitted fields are left as they are.
        for name in EVALUATION_POLICY_FIELDS:
            if name in self.fields:  # not there for a user who may only view
                self.fields[name].required = False
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
        user, password = cleaned.get("configcat_api_user"), cleaned.get("configcat_api_password")
        if bool(user) != bool(password):
            missing = "configcat_api_password" if user else "configcat_api_user"
            self.add_error(missing, _("A Public API credential is a username and a password."))
        elif user and not (cleaned.get("product_id") or "").strip():
            self.add_error(
                "product_id", _("Reading the audit log with the credential needs the product id.")
            )
        return cleaned
