"""checkov acknowledgments in the template, as cdk-nag's are in the construct tree.

checkov (the CloudFormation scanner many teams run) skips a check on a resource whose
`Metadata.checkov.skip` lists `{"id": CHECK_ID, "comment": REASON}`; the reason then travels
with the template to whoever scans it.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

METADATA_KEY = "checkov"


def skip_checkov(construct: IConstruct, check_id: str, comment: str) -> None:
    """Acknowledge one checkov check (e.g. ``CKV_AWS_117``) on one resource, with a reason.

    The skip goes on `construct` if it is a CloudFormation resource, else on its default child:
    exactly the resource checkov reports. `comment` is a sentence saying why it is safe here.
    """
    if not comment.strip().endswith("."):
        raise ValueError(f"the reason for skipping {check_id} must be a full sentence")
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    metadata = resource.get_metadata(METADATA_KEY) or {"skip": []}
    if any(skip["id"] == check_id for skip in metadata["skip"]):
        raise ValueError(f"{check_id} is already skipped on {construct.node.path}")
    metadata["skip"].append({"id": check_id, "comment": comment})
    resource.add_metadata(METADATA_KEY, metadata)
