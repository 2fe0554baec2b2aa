//! How an upstream call failed, classified for retries.

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// 429: retry later.
    #[error("{vendor} rate limited (retry after {retry_after_s:?} s)")]
    RateLimited {
        /// Vendor.
        vendor: &'static str,
        /// Retry-After, seconds.
        retry_after_s: Option<u64>,
    },
    /// Network error, timeout or 5xx: retry.
    #[error("{vendor} transient failure: {message}")]
    Transient {
        /// Vendor.
        vendor: &'static str,
        /// Sanitised message.
        message: String,
    },
    /// 4xx (other than 429) or an unusable answer: do not retry.
    #[error("{vendor} permanent failure: {message}")]
    Permanent {
        /// Vendor.
        vendor: &'static str,
        /// Sanitised message.
        message: String,
    },
}

impl UpstreamError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, UpstreamError::Permanent { .. })
    }

    /// The kind as a metric label: `rate_limited`, `transient` or `permanent`.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Transient { .. } => "transient",
            UpstreamError::Permanent { .. } => "permanent",
        }
    }

    pub(crate) fn transient(vendor: &'static str, message: impl Into<String>) -> Self {
        Self::Transient {
            vendor,
            message: message.into(),
        }
    }

    pub(crate) fn permanent(vendor: &'static str, message: impl Into<String>) -> Self {
        Self::Permanent {
            vendor,
            message: message.into(),
        }
    }
}
