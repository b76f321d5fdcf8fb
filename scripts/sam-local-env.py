"""What a function would see under `sam local invoke`, computed by SAM CLI itself, without Docker.

Run with the SAM CLI's interpreter: `.venv/sam/bin/python scripts/sam-local-env.py < invocations`.
stdin is a JSON list of `sam` argument lists, e.g. `[["local", "invoke", "OrdersApiFunction",
"--env-vars", "env.local.json"]]`. Each runs through SAM CLI's own command line, template reading,
`--env-vars` handling and credential lookup (`samcli.commands.local.cli_common.invoke_context`,
`samcli.commands.local.lib.local_lambda`, `samcli.local.lambdafn.env_vars`), in this process's
environment. Only the Docker parts are replaced (the container manager and the Lambda runtime are
never built, and where SAM CLI would start the container, the function's environment is recorded
instead), and the STS look-up of the account id is skipped (see below). stdout: a JSON list of `{"function": <logical id>, "environment": {...}}`, one per run.
"""

import json
import sys

from samcli.cli.main import cli
from samcli.commands.local.cli_common.invoke_context import InvokeContext
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner

# The two places `sam local invoke` reaches for Docker: neither is needed to compute the
# environment, and this machine may have no Docker engine.
InvokeContext._get_container_manager = lambda self, *args, **kwargs: None
InvokeContext.lambda_runtime = property(lambda self: None)
# SAM CLI asks STS for the account id to resolve AWS::AccountId in the template, and falls back to
# its default (123456789012) when that fails, as it does with the stand-in's dummy credentials.
# Skip the call (offline it only waits for a network timeout); the fallback is the same.
InvokeContext._add_account_id_to_global = lambda self: None

seen = []


def record_instead_of_running(self, function_identifier, event, *args, **kwargs):
    """Stands in for LocalLambdaRunner.invoke: the configuration it would hand the container."""
    function = self.get_function(function_identifier)
    config = self.get_invoke_config(function)
    seen.append({"function": function.name, "environment": config.env_vars.resolve()})


LocalLambdaRunner.invoke = record_instead_of_running


def main():
    invocations = json.load(sys.stdin)
    for argv in invocations:
        before = len(seen)
        try:
            cli.main(args=argv, prog_name="sam", standalone_mode=False)
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
        if len(seen) != before + 1:
            sys.exit(f"sam {' '.join(argv)} did not reach the point of invoking a function")
    json.dump(seen, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
