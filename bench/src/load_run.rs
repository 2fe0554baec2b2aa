//! The load modes of `callaudit bench` (issue 12): each one runs, then prints its figures
//! and the machine it ran on, as a table or (`--json`) as JSON.

use crate::BenchArgs;
use crate::load_args::LoadMode;
use anyhow::bail;

/// Runs `mode` with the connection settings of `args`.
pub async fn run(args: BenchArgs, mode: LoadMode) -> anyhow::Result<()> {
    let admin_url = match args.database_url.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => bail!(
            "missing required configuration: DATABASE_URL (a server-level Postgres URL; the \
             bench creates and drops its own database there)"
        ),
    };
    let (json, table) = match &mode {
        LoadMode::Api(a) => {
            let r = crate::load_api::run(&args, &admin_url, a).await?;
            (serde_json::to_string_pretty(&r)?, r.table())
        }
        LoadMode::Sse(a) => {
            let r = crate::load_sse::run(&args, &admin_url, a).await?;
            (serde_json::to_string_pretty(&r)?, r.table())
        }
        LoadMode::Worker(a) => {
            let r = crate::load_scale::worker(&args, &admin_url, a).await?;
            (serde_json::to_string_pretty(&r)?, r.table())
        }
        LoadMode::Scale(a) => {
            let r = crate::load_scale::scale(&args, &admin_url, a).await?;
            (serde_json::to_string_pretty(&r)?, r.table())
        }
        LoadMode::Long(a) => {
            let r = crate::load_long::run(&args, &admin_url, a).await?;
            (serde_json::to_string_pretty(&r)?, r.table())
        }
    };
    if args.json {
        println!("{json}");
    } else {
        print!("{table}");
    }
    Ok(())
}
