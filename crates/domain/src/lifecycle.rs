//! The subscription lifecycle state machine.
//!
//! ```text
//! initial ──► provisioning ──► active ◄──► disabled
//!    │              │          │  ▲  │          │
//!    │              │          ▼  │  │          │
//!    │              │       migrating │          │
//!    ▼              ▼          │      ▼          ▼
//!    └───────────► terminated ◄┴──────┴──────────┘
//! ```
//!
//! `active → provisioning` exists so that a modify workflow can re-provision a subscription.
//! `terminated` is final. A transition to the current state is not a transition and is refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a subscription is in its life. The wire strings are orchestrator-core's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Created, fields may still be empty.
    Initial,
    /// Being set up by a workflow.
    Provisioning,
    /// In service.
    Active,
    /// Temporarily out of service.
    Disabled,
    /// Ended; final.
    Terminated,
    /// Being moved to another product or representation.
    Migrating,
}

/// A lifecycle change the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a subscription cannot go from {from} to {to}")]
pub struct LifecycleError {
    /// The current lifecycle.
    pub from: Lifecycle,
    /// The refused target.
    pub to: Lifecycle,
}

impl Lifecycle {
    /// Every lifecycle, in declaration order.
    pub const ALL: [Lifecycle; 6] = [
        Lifecycle::Initial,
        Lifecycle::Provisioning,
        Lifecycle::Active,
        Lifecycle::Disabled,
        Lifecycle::Terminated,
        Lifecycle::Migrating,
    ];

    /// The lifecycles reachable from `self` in one step.
    pub fn successors(self) -> &'static [Lifecycle] {
        use Lifecycle::*;
        match self {
            Initial => &[Provisioning, Terminated],
            Provisioning => &[Active, Terminated],
            Active => &[Provisioning, Disabled, Migrating, Terminated],
            Disabled => &[Active, Terminated],
            Migrating => &[Active, Terminated],
            Terminated => &[],
        }
    }

    /// Whether the state machine allows going from `self` to `to`.
    pub fn can_become(self, to: Lifecycle) -> bool {
        self.successors().contains(&to)
    }

    /// Checks the transition from `self` to `to`, returning `to` when it is allowed.
    pub fn transition(self, to: Lifecycle) -> Result<Lifecycle, LifecycleError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(LifecycleError { from: self, to })
        }
    }

    /// The wire string, e.g. `"active"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Initial => "initial",
            Lifecycle::Provisioning => "provisioning",
            Lifecycle::Active => "active",
            Lifecycle::Disabled => "disabled",
            Lifecycle::Terminated => "terminated",
            Lifecycle::Migrating => "migrating",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown lifecycle string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown lifecycle {0:?}; expected one of initial, provisioning, active, disabled, terminated, migrating"
)]
pub struct UnknownLifecycle(pub String);

impl FromStr for Lifecycle {
    type Err = UnknownLifecycle;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lifecycle::ALL
            .into_iter()
            .find(|lifecycle| lifecycle.as_str() == s)
            .ok_or_else(|| UnknownLifecycle(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::Lifecycle::{self, *};

    /// The whole transition table, written out so a change to the machine changes this test.
    const LEGAL: &[(Lifecycle, Lifecycle)] = &[
        (Initial, Provisioning),
        (Initial, Terminated),
        (Provisioning, Active),
        (Provisioning, Terminated),
        (Active, Provisioning),
        (Active, Disabled),
        (Active, Migrating),
        (Active, Terminated),
        (Disabled, Active),
        (Disabled, Terminated),
        (Migrating, Active),
        (Migrating, Terminated),
    ];

    #[test]
    fn every_pair_is_legal_exactly_when_listed() {
        for from in Lifecycle::ALL {
            for to in Lifecycle::ALL {
                let expected = LEGAL.contains(&(from, to));
                match from.transition(to) {
                    Ok(reached) => {
                        assert!(expected, "{from} -> {to} should be refused");
                        assert_eq!(reached, to);
                    }
                    Err(error) => {
                        assert!(!expected, "{from} -> {to} should be allowed");
                        assert_eq!((error.from, error.to), (from, to));
                        assert_eq!(
                            error.to_string(),
                            format!("a subscription cannot go from {from} to {to}")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn terminated_is_final_and_no_state_transitions_to_itself() {
        assert!(Terminated.successors().is_empty());
        for lifecycle in Lifecycle::ALL {
            assert!(!lifecycle.can_become(lifecycle), "{lifecycle} -> itself");
        }
    }

    #[test]
    fn wire_strings_round_trip_and_match_orchestrator_core() {
        let wire: Vec<&str> = Lifecycle::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(
            wire,
            [
                "initial",
                "provisioning",
                "active",
                "disabled",
                "terminated",
                "migrating"
            ]
        );
        for lifecycle in Lifecycle::ALL {
            assert_eq!(lifecycle.as_str().parse::<Lifecycle>(), Ok(lifecycle));
        }
        assert!("Active".parse::<Lifecycle>().is_err());
    }
}
