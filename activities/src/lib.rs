//! Activity implementations (I/O lives here): upstream clients and the persistence steps
//! of callaudit's workflows. Every activity is idempotent, keyed by the workflow's ids.
