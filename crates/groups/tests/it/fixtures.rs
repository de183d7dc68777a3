//! A store with the built-in workflows, active users made by the create User workflow, and an
//! in-memory file volume whose writes and deletes can be made to fail.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use cadre_domain::models;
use cadre_domain::{ByteStream, FileVolume, Lifecycle, ProcessStatus, SystemClock};
use cadre_engine::{Engine, EngineConfig};
use cadre_groups::{Actor, NewGroup, WorkflowGroups};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_products::models::User;
use cadre_store::testing::{ScratchStore, scratch_store};
use futures_util::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

/// The workflow most tests attach groups to.
pub const WORKFLOW: &str = "create_user";

pub struct World {
    pub engine: Engine,
    pub volume: Arc<MemoryVolume>,
    pub groups: WorkflowGroups,
    /// The UserGroup every test user is in.
    user_group: Uuid,
    /// Last: removed after everything that uses it.
    _database: ScratchStore,
}

impl World {
    pub async fn new() -> Self {
        Self::with_limit(cadre_groups::DEFAULT_MAX_FILE_SIZE).await
    }

    pub async fn with_limit(max_file_size: u64) -> Self {
        let database = scratch_store().await;
        let engine = Engine::new(
            Arc::new(database.clone()),
            cadre_products::registry().unwrap(),
            Arc::new(SystemClock),
            EngineConfig::default(),
        );
        let user_group = subscription_of(
            &engine,
            "create_user_group",
            vec![
                json!({"product": USER_GROUP_PRODUCT_ID}),
                json!({"user_group_id": "staff", "user_group_name": "Staff"}),
            ],
        )
        .await;
        let volume = Arc::new(MemoryVolume::default());
        let groups = WorkflowGroups::new(engine.clone(), volume.clone(), max_file_size);
        Self {
            engine,
            volume,
            groups,
            user_group,
            _database: database,
        }
    }

    /// The UserGroup subscription the test users are in (a subscription that is not a User).
    pub fn user_group_id(&self) -> Uuid {
        self.user_group
    }

    /// An active User subscription named `name`.
    pub async fn user(&self, name: &str) -> Uuid {
        subscription_of(
            &self.engine,
            "create_user",
            vec![
                json!({"product": USER_INTERNAL_PRODUCT_ID}),
                json!({"user_id": name, "username": name, "email": format!("{name}@example.org"),
                       "user_group_ids": [self.user_group]}),
            ],
        )
        .await
    }

    /// A User subscription moved to `disabled`.
    pub async fn disabled_user(&self, name: &str) -> Uuid {
        let id = self.user(name).await;
        let store = self.engine.store().as_ref();
        let mut user: User = models::from_subscription(store, id).await.unwrap();
        user.subscription
            .change_lifecycle(Lifecycle::Disabled, chrono::Utc::now())
            .unwrap();
        models::save(store, user).await.unwrap();
        id
    }

    /// A group of `workflow` named `name`, owned by `owner`, with `members`.
    pub async fn group(&self, owner: Uuid, name: &str, members: &[Uuid]) -> String {
        self.groups
            .create(
                &Actor::user(owner),
                NewGroup {
                    workflow: WORKFLOW.to_owned(),
                    name: name.to_owned(),
                    members: members.to_vec(),
                    ..NewGroup::default()
                },
            )
            .await
            .unwrap()
            .id
            .to_string()
    }
}

/// Runs `workflow` with `pages` to completion and returns the subscription it made.
async fn subscription_of(engine: &Engine, workflow: &str, pages: Vec<Value>) -> Uuid {
    let process = engine.start(workflow, &pages, "test").await.unwrap();
    engine.run_until_idle().await.unwrap();
    let process = engine.store().process(process.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Completed, "{process:?}");
    serde_json::from_value(process.state["subscription_id"].clone()).unwrap()
}

/// Content as one stream of `chunk`-byte pieces.
pub fn content(bytes: &[u8], chunk: usize) -> ByteStream {
    let pieces: Vec<io::Result<Bytes>> = bytes
        .chunks(chunk.max(1))
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    Box::pin(futures_util::stream::iter(pieces))
}

pub async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    bytes
}

/// Content in memory. `fail_write_after(n)` makes writes fail once `n` bytes have arrived;
/// `fail_deletes(true)` makes deletes fail.
#[derive(Default)]
pub struct MemoryVolume {
    blobs: Mutex<BTreeMap<String, Vec<u8>>>,
    write_budget: Mutex<Option<usize>>,
    failing_deletes: AtomicBool,
    pub writes: AtomicUsize,
}

impl MemoryVolume {
    pub fn keys(&self) -> Vec<String> {
        self.blobs.lock().unwrap().keys().cloned().collect()
    }

    pub fn fail_write_after(&self, bytes: Option<usize>) {
        *self.write_budget.lock().unwrap() = bytes;
    }

    pub fn fail_deletes(&self, fail: bool) {
        self.failing_deletes.store(fail, Ordering::SeqCst);
    }
}

#[async_trait]
impl FileVolume for MemoryVolume {
    async fn write(&self, key: &str, mut content: ByteStream) -> io::Result<u64> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let budget = *self.write_budget.lock().unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = content.next().await {
            bytes.extend_from_slice(&chunk?);
            if budget.is_some_and(|budget| bytes.len() >= budget) {
                return Err(io::Error::other("disk full (injected)"));
            }
        }
        let size = bytes.len() as u64;
        self.blobs.lock().unwrap().insert(key.to_owned(), bytes);
        Ok(size)
    }

    async fn read(&self, key: &str) -> io::Result<ByteStream> {
        let bytes = self
            .blobs
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(content(&bytes, 3))
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        if self.failing_deletes.load(Ordering::SeqCst) {
            return Err(io::Error::other("volume offline (injected)"));
        }
        self.blobs.lock().unwrap().remove(key);
        Ok(())
    }
}
