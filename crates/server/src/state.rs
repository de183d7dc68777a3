//! What every handler shares.

use cadre_engine::Engine;
use cadre_groups::WorkflowGroups;
use cadre_provisioning::Provisioner;

/// The application state handed to handlers: the engine (and through it the store and the
/// workflow registry), the workflow groups and the provisioning loads.
#[derive(Clone)]
pub struct AppState {
    /// The workflow engine (starts, resumes and aborts processes; owns the store).
    pub engine: Engine,
    /// Workflow groups and their files.
    pub groups: WorkflowGroups,
    /// Bulk provisioning loads.
    pub provisioner: Provisioner,
}
