//! How a failed audit's reason is recorded.

use temporalio_workflow::WorkflowTermination;

/// A failure as "<outermost> ← <root cause>" ("Child workflow failed … ← elevenlabs
/// permanent failure: HTTP 401 …"), so the recorded reason names the root cause, not
/// only the wrapper around it.
pub fn failure_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let outer = e.to_string();
    let mut root = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = root.to_string();
    if std::ptr::addr_eq(root, e) || outer.contains(cause.trim()) {
        outer
    } else {
        format!("{} ← {}", outer.trim(), cause.trim())
    }
}

/// Whether the workflow may still issue commands after this termination.
pub(crate) fn can_record_failure(e: &WorkflowTermination) -> bool {
    !matches!(
        e,
        WorkflowTermination::Evicted | WorkflowTermination::ContinueAsNew(_)
    )
}

#[cfg(test)]
mod tests {
    use super::failure_chain;

    #[derive(Debug)]
    struct Wrap(&'static str, Option<Box<Wrap>>);

    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|w| w as _)
        }
    }

    #[test]
    fn a_failure_is_recorded_with_its_root_cause() {
        let e = Wrap(
            "child failed",
            Some(Box::new(Wrap(
                "activity failed",
                Some(Box::new(Wrap("crm: HTTP 401", None))),
            ))),
        );
        assert_eq!(failure_chain(&e), "child failed ← crm: HTTP 401");
        assert_eq!(failure_chain(&Wrap("alone", None)), "alone");
        let repeated = Wrap("failed: boom", Some(Box::new(Wrap("boom", None))));
        assert_eq!(failure_chain(&repeated), "failed: boom");
    }
}
