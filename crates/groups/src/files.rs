//! The files of a workflow group: upload, list, read and delete, and the recovery of what an
//! interrupted upload or delete left behind.

use cadre_domain::{ByteStream, DomainError, FileName, FileStatus, GroupFile, GroupId};
use chrono::TimeDelta;
use uuid::Uuid;

use crate::upload_watch::UploadWatch;
use crate::{Actor, GroupError, Recovery, Result, WorkflowGroups, mime};

impl WorkflowGroups {
    /// Stores `content` as a new file of the group named `name` and returns its row.
    ///
    /// The row is recorded as `uploading` first (not listed), the content written under a fresh
    /// opaque key, and only then the row marked `stored` with its size and media type. A
    /// failure removes both; what a crash leaves is removed by [`WorkflowGroups::recover`].
    pub async fn upload(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
        content: ByteStream,
    ) -> Result<GroupFile> {
        let group = self.get(actor, id).await?;
        let name = FileName::parse(name)?;
        let mut file = GroupFile {
            id: Uuid::now_v7(),
            group_id: group.id,
            name,
            key: Uuid::new_v4().simple().to_string(),
            mime_type: None,
            size: 0,
            status: FileStatus::Uploading,
            created_at: self.now(),
        };
        self.store().insert_file(&file).await?;
        let watch = UploadWatch::new(self.max_file_size);
        let written = self
            .volume
            .write(&file.key, watch.wrap(content))
            .await
            .map_err(|error| watch.error(error));
        let stored = match written {
            Ok(size) => {
                file.size = size;
                file.mime_type = mime::detect(file.name.as_str(), &watch.head());
                file.status = FileStatus::Stored;
                self.store()
                    .update_file(&file)
                    .await
                    .map_err(GroupError::from)
            }
            Err(error) => Err(error),
        };
        if let Err(error) = stored {
            self.abandon_upload(&file).await;
            return Err(error);
        }
        Ok(file)
    }

    /// Removes what a failed upload left, as far as the volume and the database allow; what
    /// remains is an `uploading` row that [`WorkflowGroups::recover`] removes.
    async fn abandon_upload(&self, file: &GroupFile) {
        if let Err(error) = self.volume.delete(&file.key).await {
            tracing::warn!(file = %file.id, %error, "could not remove a failed upload's content");
            return;
        }
        if let Err(error) = self.store().delete_file(file.id).await {
            tracing::warn!(file = %file.id, %error, "could not remove a failed upload's row");
        }
    }

    /// The group's stored files in upload order.
    pub async fn files(&self, actor: &Actor, id: &str) -> Result<Vec<GroupFile>> {
        let group = self.get(actor, id).await?;
        Ok(self
            .store()
            .group_files(&group.id, Some(FileStatus::Stored))
            .await?)
    }

    async fn stored_file(&self, group: &GroupId, file_id: Uuid) -> Result<GroupFile> {
        match self.store().group_file(group, file_id).await {
            Ok(file) if file.status == FileStatus::Stored => Ok(file),
            Ok(_) | Err(DomainError::NotFound { .. }) => {
                Err(DomainError::not_found("file", file_id).into())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// A stored file of the group and its content as a stream. A file id of another group is an
    /// unknown file.
    pub async fn read_file(
        &self,
        actor: &Actor,
        id: &str,
        file_id: Uuid,
    ) -> Result<(GroupFile, ByteStream)> {
        let group = self.get(actor, id).await?;
        let file = self.stored_file(&group.id, file_id).await?;
        let content = self
            .volume
            .read(&file.key)
            .await
            .map_err(|error| GroupError::Volume(error.to_string()))?;
        Ok((file, content))
    }

    /// Deletes a stored file of the group. A file id of another group is an unknown file.
    pub async fn delete_file(&self, actor: &Actor, id: &str, file_id: Uuid) -> Result<()> {
        let group = self.get(actor, id).await?;
        let file = self.stored_file(&group.id, file_id).await?;
        self.remove_file(file).await
    }

    /// Marks `file` as deleting (no longer listed), removes its content, then its row. A volume
    /// failure leaves the `deleting` row for [`WorkflowGroups::recover`].
    pub(crate) async fn remove_file(&self, mut file: GroupFile) -> Result<()> {
        self.mark_deleting(&mut file).await?;
        self.volume
            .delete(&file.key)
            .await
            .map_err(|error| GroupError::Volume(error.to_string()))?;
        self.store().delete_file(file.id).await?;
        Ok(())
    }

    /// Records that `file` is being deleted, which hides it, unless it already is.
    pub(crate) async fn mark_deleting(&self, file: &mut GroupFile) -> Result<()> {
        if file.status != FileStatus::Deleting {
            file.status = FileStatus::Deleting;
            self.store().update_file(file).await?;
        }
        Ok(())
    }

    /// Finishes what interrupted operations left: removes uploads still `uploading` that
    /// started more than `grace` ago (content and row), and completes every pending deletion.
    pub async fn recover(&self, grace: TimeDelta) -> Result<Recovery> {
        let now = self.now();
        let mut recovery = Recovery::default();
        for file in self
            .store()
            .files_in_status(FileStatus::Uploading, now - grace)
            .await?
        {
            self.remove_file(file).await?;
            recovery.abandoned_uploads += 1;
        }
        for file in self
            .store()
            // Every pending deletion, whatever its age (the second covers a row created now).
            .files_in_status(FileStatus::Deleting, now + TimeDelta::seconds(1))
            .await?
        {
            self.remove_file(file).await?;
            recovery.completed_deletions += 1;
        }
        Ok(recovery)
    }
}
