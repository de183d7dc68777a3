//! What every handler shares.

use cadre_engine::Engine;

/// The application state handed to handlers: the engine, and through it the store and the
/// workflow registry.
#[derive(Clone)]
pub struct AppState {
    /// The workflow engine (starts, resumes and aborts processes; owns the store).
    pub engine: Engine,
}
