"""What `sam deploy` reads from samconfig.toml, per environment, parsed by SAM CLI's own code.

Run with the SAM CLI's interpreter: `.venv/sam/bin/python scripts/samconfig-show.py [env ...]`
(default: default prod). stdout: JSON, for each environment its deploy parameters with `tags` and
`parameter_overrides` parsed as `sam deploy` parses them.
"""

import json
import sys

from samcli.cli.types import CfnParameterOverridesType, CfnTags
from samcli.lib.config.samconfig import SamConfig


def main():
    config = SamConfig(".")
    shown = {}
    for env in sys.argv[1:] or ["default", "prod"]:
        parameters = dict(config.get_all(["deploy"], "parameters", env=env))
        if "tags" in parameters:
            parameters["tags"] = CfnTags().convert(parameters["tags"], None, None)
        if "parameter_overrides" in parameters:
            parameters["parameter_overrides"] = CfnParameterOverridesType().convert(
                parameters["parameter_overrides"], None, None
            )
        shown[env] = parameters
    json.dump(shown, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
