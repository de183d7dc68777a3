//! `cadre workflow-group`: workflow groups and their files, as an admin.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cadre_groups::{Actor, GroupChanges, NewGroup, WorkflowGroups};
use cadre_server::api::groups::{FileSchema, GroupSchema};
use clap::Subcommand;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::output::Output;

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// List groups.
    List {
        /// Only groups of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only groups with this User subscription as a member.
        #[arg(long)]
        member: Option<Uuid>,
    },
    /// Show one group.
    Show {
        /// Group identifier.
        id: String,
    },
    /// Create a group.
    Create {
        /// The workflow it belongs to.
        #[arg(long)]
        workflow: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// The owning User subscription.
        #[arg(long)]
        owner: Uuid,
        /// A member besides the owner (repeatable).
        #[arg(long = "member")]
        members: Vec<Uuid>,
        /// An identifier instead of a generated one.
        #[arg(long)]
        identifier: Option<String>,
    },
    /// Rename a group and/or set its exact members.
    Update {
        /// Group identifier.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// The new member set, owner included (repeatable).
        #[arg(long = "member")]
        members: Option<Vec<Uuid>>,
    },
    /// Delete a group and its files.
    Delete {
        /// Group identifier.
        id: String,
    },
    /// List a group's files.
    Files {
        /// Group identifier.
        id: String,
    },
    /// Upload a file to a group.
    Upload {
        /// Group identifier.
        id: String,
        /// The local file.
        path: PathBuf,
        /// The name to store it under (default: the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Download a file of a group.
    Download {
        /// Group identifier.
        id: String,
        /// File id.
        file_id: Uuid,
        /// Where to write it (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Delete a file of a group.
    DeleteFile {
        /// Group identifier.
        id: String,
        /// File id.
        file_id: Uuid,
    },
    /// Finish uploads and deletions an interrupted server left behind.
    Recover,
}

pub(crate) async fn workflow_group(
    groups: &WorkflowGroups,
    output: &Output,
    command: GroupCommand,
) -> Result<()> {
    let operator = Actor::operator();
    match command {
        GroupCommand::List { workflow, member } => {
            let list = groups.list(&operator, workflow.as_deref(), member).await?;
            output.groups(&list.into_iter().map(GroupSchema::from).collect::<Vec<_>>());
        }
        GroupCommand::Show { id } => output.group(&groups.get(&operator, &id).await?.into()),
        GroupCommand::Create {
            workflow,
            name,
            owner,
            members,
            identifier,
        } => {
            let new = NewGroup {
                workflow,
                name,
                identifier,
                owner: Some(owner),
                members,
                ..NewGroup::default()
            };
            output.group(&groups.create(&operator, new).await?.into());
        }
        GroupCommand::Update { id, name, members } => {
            let changes = GroupChanges { name, members };
            output.group(&groups.update(&operator, &id, changes).await?.into());
        }
        GroupCommand::Delete { id } => {
            groups.delete(&operator, &id).await?;
            output.message(&format!("workflow group {id} deleted"));
        }
        GroupCommand::Files { id } => {
            let files = groups.files(&operator, &id).await?;
            output.files(&files.into_iter().map(FileSchema::from).collect::<Vec<_>>());
        }
        GroupCommand::Upload { id, path, name } => {
            let name = match name {
                Some(name) => name,
                None => path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .context("the path names no file; pass --name")?,
            };
            let file = tokio::fs::File::open(&path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?;
            let content = Box::pin(tokio_util::io::ReaderStream::new(file));
            let stored = groups.upload(&operator, &id, &name, content).await?;
            output.files(&[stored.into()]);
        }
        GroupCommand::Download {
            id,
            file_id,
            output: path,
        } => {
            let (_, mut content) = groups.read_file(&operator, &id, file_id).await?;
            let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin> = match &path {
                Some(path) => Box::new(
                    tokio::fs::File::create(path)
                        .await
                        .with_context(|| format!("cannot create {}", path.display()))?,
                ),
                None => Box::new(tokio::io::stdout()),
            };
            while let Some(chunk) = content.next().await {
                sink.write_all(&chunk?).await?;
            }
            sink.flush().await?;
        }
        GroupCommand::DeleteFile { id, file_id } => {
            groups.delete_file(&operator, &id, file_id).await?;
            output.message(&format!("file {file_id} deleted"));
        }
        GroupCommand::Recover => {
            let recovery = groups.recover(chrono::TimeDelta::hours(1)).await?;
            output.message(&format!(
                "{} abandoned uploads removed, {} deletions completed",
                recovery.abandoned_uploads, recovery.completed_deletions
            ));
        }
    }
    Ok(())
}
