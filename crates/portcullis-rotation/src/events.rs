//! Security events: what an operator must hear about, through a small sink trait and `tracing`.

use std::fmt;
use std::sync::Mutex;

use crate::store::BindingMismatch;
use crate::{BindingAction, FamilyId, HashPrefix, RevocationReason};

/// Something an operator must hear about. Events carry ids and short hash prefixes, never a
/// plaintext token, a verifier or a whole hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityEvent {
    /// A used or superseded refresh token was presented outside the grace window; its family
    /// was revoked (RFC 9700 §4.14.2).
    RefreshReplayDetected {
        /// The family.
        family: FamilyId,
        /// Its user.
        user_id: String,
        /// Its client.
        client_id: String,
        /// The replayed token.
        token: HashPrefix,
        /// Its generation.
        generation: u32,
    },
    /// A used authorization code was presented again with the right client and verifier; its
    /// family was revoked (RFC 6749 §4.1.2).
    CodeReplayed {
        /// The family.
        family: FamilyId,
        /// Its user.
        user_id: String,
        /// Its client.
        client_id: String,
        /// The replayed code.
        code: HashPrefix,
    },
    /// A refresh request did not match the family's binding.
    BindingMismatch {
        /// The family.
        family: FamilyId,
        /// Its user.
        user_id: String,
        /// Its client.
        client_id: String,
        /// The presented token.
        token: HashPrefix,
        /// What differed.
        mismatch: BindingMismatch,
        /// What the policy did about it.
        action: BindingAction,
    },
    /// A family was revoked.
    FamilyRevoked {
        /// The family.
        family: FamilyId,
        /// Why.
        reason: RevocationReason,
    },
}

impl SecurityEvent {
    /// A stable name for the kind of event.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::RefreshReplayDetected { .. } => "refresh_replay_detected",
            Self::CodeReplayed { .. } => "code_replayed",
            Self::BindingMismatch { .. } => "binding_mismatch",
            Self::FamilyRevoked { .. } => "family_revoked",
        }
    }

    /// The family the event is about.
    #[must_use]
    pub const fn family(&self) -> FamilyId {
        match self {
            Self::RefreshReplayDetected { family, .. }
            | Self::CodeReplayed { family, .. }
            | Self::BindingMismatch { family, .. }
            | Self::FamilyRevoked { family, .. } => *family,
        }
    }

    /// Emit this event as a `tracing` event at `WARN` on the target
    /// `portcullis_rotation::security`.
    pub fn trace(&self) {
        const TARGET: &str = "portcullis_rotation::security";
        match self {
            Self::RefreshReplayDetected {
                family,
                user_id,
                client_id,
                token,
                generation,
            } => tracing::warn!(
                target: TARGET,
                event = self.name(),
                %family,
                user_id = %user_id,
                client_id = %client_id,
                %token,
                generation,
                "refresh token replay detected; family revoked"
            ),
            Self::CodeReplayed {
                family,
                user_id,
                client_id,
                code,
            } => tracing::warn!(
                target: TARGET,
                event = self.name(),
                %family,
                user_id = %user_id,
                client_id = %client_id,
                %code,
                "authorization code replayed; family revoked"
            ),
            Self::BindingMismatch {
                family,
                user_id,
                client_id,
                token,
                mismatch,
                action,
            } => tracing::warn!(
                target: TARGET,
                event = self.name(),
                %family,
                user_id = %user_id,
                client_id = %client_id,
                %token,
                user_agent = mismatch.user_agent,
                ip_prefix = mismatch.ip_prefix,
                device_id = mismatch.device_id,
                action = action.as_str(),
                "refresh request does not match the family's binding"
            ),
            Self::FamilyRevoked { family, reason } => tracing::warn!(
                target: TARGET,
                event = self.name(),
                %family,
                reason = reason.as_str(),
                "grant family revoked"
            ),
        }
    }
}

/// Where security events go besides `tracing` (an audit log, a metrics counter, an alert).
///
/// Called synchronously after the store call that caused the event; keep it quick (hand off to
/// a channel for slow work). Object-safe.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Receive one event.
    fn emit(&self, event: &SecurityEvent);
}

/// A sink that drops events (they still go to `tracing`). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &SecurityEvent) {}
}

/// A sink that keeps every event in memory, for tests.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<SecurityEvent>>,
}

impl RecordingSink {
    /// An empty recorder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    #[must_use]
    pub fn events(&self) -> Vec<SecurityEvent> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forget the events so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: &SecurityEvent) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.clone());
    }
}
