//! Text columns holding a domain enum (`audits.status`, `audits.niveau`,
//! `audit_step_results.conforme`…): read through [`Named`] / [`NamedOpt`], which parse the
//! stored name strictly, so a row with an unknown value is a query error, never silently
//! another value. Written with the enum's `as_str()`.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types::{Nullable, Text};
use std::str::FromStr;

/// A non-null text column parsed into `T` (`#[diesel(deserialize_as = Named<T>)]`).
#[derive(Debug)]
pub struct Named<T>(pub T);

/// A nullable text column parsed into `Option<T>`.
#[derive(Debug)]
pub struct NamedOpt<T>(pub Option<T>);

fn parse<T: FromStr>(value: PgValue<'_>) -> deserialize::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let s = <String as FromSql<Text, Pg>>::from_sql(value)?;
    Ok(s.parse::<T>()?)
}

impl<T: FromStr> FromSql<Text, Pg> for Named<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        parse(value).map(Named)
    }
}

impl<T: FromStr> FromSql<Nullable<Text>, Pg> for NamedOpt<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        parse(value).map(|v| NamedOpt(Some(v)))
    }

    fn from_nullable_sql(value: Option<PgValue<'_>>) -> deserialize::Result<Self> {
        value.map_or(Ok(NamedOpt(None)), Self::from_sql)
    }
}

/// Single-column `Queryable`, as `#[derive(FromSqlRow)]` would write it for a
/// non-generic type.
macro_rules! single_column {
    ($($w:ident),+) => {$(
        impl<T, ST> diesel::Queryable<ST, Pg> for $w<T>
        where
            ST: diesel::sql_types::SingleValue,
            Self: FromSql<ST, Pg>,
        {
            type Row = Self;
            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }
    )+};
}
single_column!(Named, NamedOpt);

/// `From<Named<T>> for T` and `From<NamedOpt<T>> for Option<T>` for each enum stored
/// by name (the orphan rule wants them spelled per type).
macro_rules! stored_by_name {
    ($($t:ty),+) => {$(
        impl From<Named<$t>> for $t {
            fn from(n: Named<$t>) -> Self {
                n.0
            }
        }
        impl From<NamedOpt<$t>> for Option<$t> {
            fn from(n: NamedOpt<$t>) -> Self {
                n.0
            }
        }
    )+};
}

use callaudit_domain::analysis::{Conformite, Niveau};
use callaudit_domain::batch::{BatchItemStatus, BatchStatus};
use callaudit_domain::chat::{ChatMessageStatus, ChatRole};
use callaudit_domain::fetch_job::{FetchDayStatus, FetchJobStatus};
use callaudit_domain::rerun::{RerunKind, RerunStatus};
use callaudit_domain::status::{AuditStatus, TranscriptionStatus};
stored_by_name!(
    AuditStatus,
    BatchStatus,
    BatchItemStatus,
    Conformite,
    Niveau,
    TranscriptionStatus,
    RerunKind,
    RerunStatus,
    ChatRole,
    ChatMessageStatus,
    FetchJobStatus,
    FetchDayStatus
);
