//! What went wrong with one attempt, as the router needs to know it.

use gatehouse_llm::ErrorKind;

/// One failed attempt, classified at the adapter boundary (never guessed from bytes here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the deployment's timeout.
    Timeout,
    /// Connection refused, reset, DNS, TLS, or a stream cut before it finished.
    Unreachable,
    /// The vendor answered an error of this kind.
    Vendor(ErrorKind),
}

/// The retry-policy and allowed-fails-policy classes LiteLLM names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    Timeout,
    RateLimit,
    ContentPolicy,
    Auth,
    BadRequest,
    InternalServer,
}

impl Failure {
    /// Whether the same request can succeed on another try (here or elsewhere).
    pub fn is_transient(self) -> bool {
        match self {
            Failure::Timeout | Failure::Unreachable => true,
            Failure::Vendor(kind) => kind.is_retryable(),
        }
    }

    /// Whether the failure says something about the deployment (counts toward its
    /// cooldown). The client's own mistakes (a bad request, a prompt too long) do not.
    pub fn blames_deployment(self) -> bool {
        match self {
            Failure::Timeout | Failure::Unreachable => true,
            Failure::Vendor(kind) => matches!(
                kind,
                ErrorKind::RateLimit
                    | ErrorKind::Overloaded
                    | ErrorKind::Upstream
                    | ErrorKind::Auth
                    | ErrorKind::PermissionDenied
                    | ErrorKind::NotFound
            ),
        }
    }

    /// Whether `fallbacks` (the generic list) may answer instead: transient failures and
    /// a deployment that cannot serve at all (bad credentials, unknown model).
    pub fn allows_generic_fallback(self) -> bool {
        self.blames_deployment()
    }

    pub fn class(self) -> FailureClass {
        match self {
            Failure::Timeout => FailureClass::Timeout,
            Failure::Unreachable => FailureClass::InternalServer,
            Failure::Vendor(kind) => match kind {
                ErrorKind::RateLimit => FailureClass::RateLimit,
                ErrorKind::ContentPolicy => FailureClass::ContentPolicy,
                ErrorKind::Auth | ErrorKind::PermissionDenied => FailureClass::Auth,
                ErrorKind::ContextLength
                | ErrorKind::InvalidRequest
                | ErrorKind::RequestTooLarge
                | ErrorKind::NotFound => FailureClass::BadRequest,
                ErrorKind::Overloaded | ErrorKind::Upstream => FailureClass::InternalServer,
            },
        }
    }
}
