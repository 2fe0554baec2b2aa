//! `DayFetchWorkflow`: one day of a progressive fetch job
//! (`fiche-fetch-job:{job_id}:day:{YYYY-MM-DD}`, `…:retry:{n}` for a retry).

use crate::window::run_sliding_window;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::fetch_job::{DayCounts, DayFetchInput, SearchDayInput};
use callaudit_domain::workflow_io::EnsureFicheInput;
use std::convert::Infallible;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{ActivityOptions, RetryPolicy, WorkflowContext, WorkflowResult};

/// Attempts of one CRM call of a job (the day's sales search, each detail fetch) before
/// the day (or the fiche) is recorded failed: 1 s, 2 s, 4 s apart. Shorter than an
/// audit's eight: the job lists what failed and `POST …/retry` redoes it.
pub const JOB_CRM_ATTEMPTS: u32 = 4;

/// Options of a job's CRM activities: 120 s per attempt (a wait for a slot of a global
/// cap included), heartbeats (lease holders beat every 4 s), [`JOB_CRM_ATTEMPTS`].
pub fn job_crm_activity() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
        .heartbeat_timeout(Duration::from_secs(12))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(30))
                .maximum_attempts(JOB_CRM_ATTEMPTS)
                .build(),
        )
        .build()
}

/// Searches the CRM for the day's sales (partial fiches stored), then fetches the details
/// of those selected by `groupes`, `fiche_window` at once; returns what it processed. A
/// failed search fails the day (its parent records it); a failed detail fetch is counted.
#[workflow]
#[derive(Default)]
pub struct DayFetchWorkflow;

#[workflow_methods]
impl DayFetchWorkflow {
    /// Runs `fetch_job.search_day`, then one `fiche.ensure_details` per selected fiche.
    #[run(name = "DayFetchWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: DayFetchInput,
    ) -> WorkflowResult<DayCounts> {
        let sales = ctx
            .execute_activity(
                CallauditActivities::search_fetch_day,
                SearchDayInput {
                    job_id: input.job_id.clone(),
                    day: input.day,
                    groupes: input.groupes.clone(),
                },
                job_crm_activity(),
            )
            .await?;
        let found = u32::try_from(sales.fiche_ids.len()).unwrap_or(u32::MAX);
        let (mut fetched, mut failed) = (0, 0);
        let width = usize::try_from(input.fiche_window.max(1)).unwrap_or(1);
        let force_refresh = input.force_refresh;
        run_sliding_window(
            sales.fiche_ids,
            width,
            |fiche_id| {
                let ctx = ctx.clone();
                async move {
                    let stored = ctx
                        .execute_activity(
                            CallauditActivities::ensure_fiche,
                            EnsureFicheInput {
                                fiche_id,
                                force_refresh,
                            },
                            job_crm_activity(),
                        )
                        .await;
                    Ok::<bool, Infallible>(stored.is_ok())
                }
            },
            |stored| {
                if stored {
                    fetched += 1;
                } else {
                    failed += 1;
                }
            },
        )
        .await
        .unwrap_or_else(|never: Infallible| match never {});
        Ok(DayCounts {
            day: input.day,
            found,
            fetched,
            failed,
        })
    }
}
