"""Expands a SAM template into the CloudFormation that `sam deploy` creates, with SAM's own translator.

Run with the SAM CLI's interpreter: `.venv/sam/bin/python scripts/sam-expand.py template.yaml`
(`-` reads the template from stdin; AWS_DEFAULT_REGION set: the translator reads the region for
its ARNs). stdout: the expanded
template as JSON, every resource SAM generates included (roles and the managed policies it
attaches, event source mappings, permissions, the HTTP API's stage), resource Metadata kept.

Two things differ from a deploy, neither of which touches IAM: a local `CodeUri` (a Cargo package
directory, which `sam build` turns into an S3 object) is replaced by a placeholder S3 URI, as
`sam validate` does; and a managed policy named by name in `Policies`, whose ARN the translator
would look up in IAM, is refused (name it by ARN, or better, write its statements out).
"""

import json
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform


class NoManagedPolicyLookup(ManagedPolicyLoader):
    """The translator asks this for managed policy ARNs by name; answering needs IAM."""

    def __init__(self):  # pylint: disable=super-init-not-called
        pass

    def load(self):
        sys.exit("the template names a managed policy by name; scripts/sam-expand.py does not call IAM")


def main():
    (path,) = sys.argv[1:]
    if path == "-":
        template = yaml_parse(sys.stdin.read())
    else:
        with open(path, encoding="utf-8") as f:
            template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = resource.get("Properties", {}).get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            resource["Properties"]["CodeUri"] = f"s3://local-build/{code_uri}"
    expanded = transform(template, {}, NoManagedPolicyLookup(), passthrough_metadata=True)
    json.dump(expanded, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
