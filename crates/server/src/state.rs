//! What every handler shares.

use cadre_engine::Engine;
use cadre_groups::WorkflowGroups;

/// The application state handed to handlers: the engine (and through it the store and the
/// workflow registry) and the workflow groups.
#[derive(Clone)]
pub struct AppState {
    /// The workflow engine (starts, resumes and aborts processes; owns the store).
    pub engine: Engine,
    /// Workflow groups and their files.
    pub groups: WorkflowGroups,
}
