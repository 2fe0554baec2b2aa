//! `callaudit pii-eval`: the personal-data detector (`domain::pii`) measured on a
//! labelled set — the committed one (`domain/data/pii-fr*.jsonl`, embedded in the
//! binary) or the `--file`s given — printed as recall and precision per kind against the
//! targets. Fails (exit code 1) when a kind misses its target.

use anyhow::Context;
use callaudit_domain::pii::eval;

use crate::config::PiiEvalArgs;

/// Prints the figures; an error when a target is missed.
pub fn run(args: PiiEvalArgs) -> anyhow::Result<()> {
    let cases = if args.file.is_empty() {
        eval::embedded_cases().context("reading the committed labelled set")?
    } else {
        let mut cases = Vec::new();
        for path in &args.file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            cases.extend(eval::parse_cases(&path.display().to_string(), &text)?);
        }
        cases
    };
    let sources = if args.file.is_empty() {
        eval::EMBEDDED_SETS
            .iter()
            .map(|(name, _)| format!("domain/data/{name}"))
            .collect::<Vec<_>>()
    } else {
        args.file.iter().map(|p| p.display().to_string()).collect()
    };
    let report = eval::evaluate(&cases);
    println!("labelled set: {}", sources.join(", "));
    print!("{}", report.table());
    if !args.quiet && !report.mistakes.is_empty() {
        print!("\nmistakes:\n{}", report.mistakes_list());
    }
    let failing: Vec<&str> = report
        .kinds
        .iter()
        .filter(|k| !k.passes())
        .map(|k| k.kind.as_str())
        .collect();
    if failing.is_empty() {
        println!("\nevery target met");
        Ok(())
    } else {
        anyhow::bail!("targets missed: {}", failing.join(", "))
    }
}
