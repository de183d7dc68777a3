//! What a load did, or would do: one report row per input row or removal, and their counts.

use serde::{Deserialize, Serialize};

/// What became of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A subscription was created.
    Created,
    /// An existing subscription was changed to match the row.
    Updated,
    /// The subscription already matched the row (or, for an inactive row, did not exist):
    /// nothing was written.
    Unchanged,
    /// The subscription was terminated.
    Removed,
    /// The row was left alone on purpose (a protected user, a subscription another process
    /// holds); the reason says why.
    Skipped,
    /// The row could not be applied; the reason says why.
    Failed,
}

/// One row of a load's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowReport {
    /// The input row, or `None` for a removal of something the input does not list.
    pub row: Option<u64>,
    /// The external id of the user or group.
    pub id: String,
    /// What happened (or, in a plan, what would happen).
    pub outcome: Outcome,
    /// Why, for skipped and failed rows.
    pub reason: Option<String>,
}

impl RowReport {
    /// A report row without a reason.
    pub fn new(row: Option<u64>, id: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            row,
            id: id.into(),
            outcome,
            reason: None,
        }
    }

    /// A report row with a reason.
    pub fn because(
        row: Option<u64>,
        id: impl Into<String>,
        outcome: Outcome,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::new(row, id, outcome)
        }
    }
}

/// How many rows had each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Created.
    pub created: u64,
    /// Updated.
    pub updated: u64,
    /// Unchanged.
    pub unchanged: u64,
    /// Removed.
    pub removed: u64,
    /// Skipped.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
}

impl Counts {
    /// The counts of `rows`.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a RowReport>) -> Self {
        let mut counts = Self::default();
        for row in rows {
            *match row.outcome {
                Outcome::Created => &mut counts.created,
                Outcome::Updated => &mut counts.updated,
                Outcome::Unchanged => &mut counts.unchanged,
                Outcome::Removed => &mut counts.removed,
                Outcome::Skipped => &mut counts.skipped,
                Outcome::Failed => &mut counts.failed,
            } += 1;
        }
        counts
    }

    /// Rows that write something: created, updated and removed.
    pub fn writes(&self) -> u64 {
        self.created + self.updated + self.removed
    }
}
