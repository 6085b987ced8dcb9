"""Emulator only: the template moto gets lacks the custom resource that restricts the VPC's default
security group.

The deployed stack keeps CDK's default (`restrict_default_security_group=True`): a
`Custom::VpcRestrictDefaultSG` resource whose Node.js Lambda handler removes every rule of the
VPC's default security group when the stack is created. moto cannot run that handler (its Lambda
has no Node.js runtime without Docker, and the local Lambda runner runs Python handlers only), so
the stack would never leave CREATE_IN_PROGRESS. Before a template is handed to moto, this module
removes the custom resource and its provider (the handler function and the handler's role), and
drops the handler's code from the assets to upload. Nothing the local tests or the demo exercise
uses the default security group, so only the restriction itself is missing here.

`adapt_assembly` rewrites a synthesized cloud assembly in place, with the template's new hash in
the asset manifest and the stack's manifest, so `cdk deploy --app ASSEMBLY` uploads and deploys
exactly the adapted template.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: The CloudFormation type of CDK's default-security-group restriction.
RESTRICT_DEFAULT_SG_TYPE = "Custom::VpcRestrictDefaultSG"


def _get_att_target(value: Any) -> str | None:
    """The logical ID an `{"Fn::GetAtt": [ID, attribute]}` points at, else None."""
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        target = value["Fn::GetAtt"]
        if isinstance(target, list) and target and isinstance(target[0], str):
            return target[0]
    return None


def _references(value: Any) -> Iterator[str]:
    """Every logical ID `value` names through `Ref` or `Fn::GetAtt`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt" and isinstance(inner, list) and inner:
                yield str(inner[0])
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


def restriction_resources(template: dict[str, Any]) -> set[str]:
    """Logical IDs of every `Custom::VpcRestrictDefaultSG`, its handler and the handler's role
    (the role only when nothing else in the template refers to it)."""
    resources: dict[str, Any] = template.get("Resources", {})
    removed = {
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") == RESTRICT_DEFAULT_SG_TYPE
    }
    handlers = {
        handler
        for logical_id in removed
        if (handler := _get_att_target(resources[logical_id]["Properties"].get("ServiceToken")))
        is not None
    }
    removed |= handlers
    roles = {
        role
        for handler in handlers
        if (role := _get_att_target(resources[handler].get("Properties", {}).get("Role")))
        is not None
    }
    for role in roles:
        users = {
            logical_id
            for logical_id, resource in resources.items()
            if logical_id not in removed
            and (role in _references(resource) or role in _depends_on(resource))
        }
        if not users:
            removed.add(role)
    return removed


def emulator_template(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of `template` without the default security group's restriction (see the module
    docstring); every other resource, and every `DependsOn` on what remains, is kept."""
    removed = restriction_resources(template)
    adapted = copy.deepcopy(template)
    resources = adapted.get("Resources", {})
    for logical_id in removed:
        del resources[logical_id]
    for resource in resources.values():
        depends = _depends_on(resource)
        kept = [d for d in depends if d not in removed]
        if len(kept) != len(depends):
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
    dangling = sorted(r for res in resources.values() for r in _references(res) if r in removed)
    if dangling:
        raise ValueError(f"the template still refers to removed resources: {dangling}")
    return adapted


def _code_keys(resources: Iterable[dict[str, Any]]) -> set[str]:
    """The S3 keys of the Lambda code `resources` name (e.g. `HASH.zip`)."""
    keys = set()
    for resource in resources:
        key = resource.get("Properties", {}).get("Code", {}).get("S3Key")
        if isinstance(key, str):
            keys.add(key)
    return keys


def adapt_assembly(assembly: Path, stack: str) -> set[str]:
    """Rewrite `stack`'s template in the cloud assembly `assembly` as `emulator_template` does;
    re-key the template's asset by its new hash and drop the assets of the removed handlers.

    Returns the logical IDs removed (empty when the stack has no such restriction, e.g. with an
    imported VPC; the assembly is then left as it was).
    """
    template_path = assembly / f"{stack}.template.json"
    template = json.loads(template_path.read_text(encoding="utf-8"))
    removed = restriction_resources(template)
    if not removed:
        return removed
    resources = template["Resources"]
    removed_code = _code_keys(resources[r] for r in removed)
    adapted = emulator_template(template)
    kept_code = _code_keys(adapted["Resources"].values())
    text = json.dumps(adapted, indent=1)
    template_path.write_text(text, encoding="utf-8")

    assets_path = assembly / f"{stack}.assets.json"
    assets = json.loads(assets_path.read_text(encoding="utf-8"))
    files: dict[str, Any] = assets.get("files", {})
    for asset_id, asset in list(files.items()):
        keys = {d["objectKey"] for d in asset["destinations"].values()}
        if keys & removed_code and not keys & kept_code:
            del files[asset_id]
    (old_hash,) = (
        asset_id
        for asset_id, asset in files.items()
        if asset["source"]["path"] == template_path.name
    )
    new_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assets_path.write_text(
        json.dumps(assets, indent=1).replace(old_hash, new_hash), encoding="utf-8"
    )
    manifest_path = assembly / "manifest.json"
    manifest_path.write_text(
        manifest_path.read_text(encoding="utf-8").replace(old_hash, new_hash), encoding="utf-8"
    )
    return removed
