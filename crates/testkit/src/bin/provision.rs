//! Provisions `template.yaml` on a running stand-in under a stack name (used by `scripts/standin`).
//!
//! Usage: provision ENDPOINT STACK_NAME

use anyhow::{Context, bail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, stack_name] = args.as_slice() else {
        bail!("usage: provision ENDPOINT STACK_NAME (e.g. provision http://127.0.0.1:5000 dev)");
    };
    let config = testkit::sdk_config_for(endpoint).await;
    let stack = testkit::LocalStack::provision_as(
        &config,
        &testkit::template(),
        testkit::Stack::new(stack_name),
    )
    .await
    .with_context(|| format!("provisioning template.yaml on {endpoint}"))?;
    println!("provisioned stack {stack_name} on {endpoint}:");
    for (kind, logical) in [
        ("table", "IdempotencyTable"),
        ("table", "OrdersTable"),
        ("table", "FulfillmentTable"),
        ("table", "SupportTable"),
    ] {
        println!("  {kind:6} {}", stack.table(logical));
    }
    println!("  bus    {}", stack.bus("EventBus"));
    Ok(())
}
