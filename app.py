#!/usr/bin/env python3
"""The CDK app: settings from context (cdk.json and `-c key=value`), cdk-nag, one stack.

The only place that reads CDK context and the environment.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from stacks import (
    IiifProcessStack,
    SettingsError,
    add_nag_checks,
    settings_from_context,
)


def main() -> None:
    app = cdk.App()
    # Every context key without ":" is a setting (CDK's own keys, feature flags and cached
    # lookups all hold one), so a mistyped `-c cpus=2048` stops synthesis instead of vanishing.
    values = {k: v for k, v in app.node.get_all_context().items() if ":" not in k}
    try:
        settings = settings_from_context(values)
    except SettingsError as error:
        sys.exit(f"error: {error}")
    add_nag_checks(app)
    IiifProcessStack(
        app,
        settings.stack_name,
        settings=settings,
        # Set by the CDK CLI from the current credentials; unset means an environment-agnostic
        # template (two AZs chosen at deploy time with Fn::GetAZs).
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    app.synth()


if __name__ == "__main__":
    main()
