"""The CDK app's infrastructure: `IiifProcessStack` and the constructs it is built from."""

from stacks.iiif_process_stack import IiifProcessStack
from stacks.nag import add_nag_checks
from stacks.stack_settings import SETTING_KEYS, Settings, SettingsError, settings_from_context

__all__ = [
    "SETTING_KEYS",
    "IiifProcessStack",
    "Settings",
    "SettingsError",
    "add_nag_checks",
    "settings_from_context",
]
