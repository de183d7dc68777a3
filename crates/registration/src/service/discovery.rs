//! Discoverable groups: listing them, and joining or leaving one.

use super::*;

impl Registration {
    /// The active discoverable groups, by id.
    pub async fn discoverable_groups(&self) -> Result<Vec<PublicGroup>, RegistrationError> {
        let mut groups: Vec<PublicGroup> = self
            .active_discoverable()
            .await?
            .iter()
            .map(public)
            .collect();
        groups.sort_by(|a, b| a.user_group_id.cmp(&b.user_group_id));
        Ok(groups)
    }

    /// The subscription ids of the active discoverable groups (what anyone signed in may see).
    pub async fn discoverable_group_ids(&self) -> Result<Vec<Uuid>, RegistrationError> {
        Ok(self
            .active_discoverable()
            .await?
            .into_iter()
            .map(|group| group.subscription.id)
            .collect())
    }

    async fn active_discoverable(&self) -> Result<Vec<UserGroup>, RegistrationError> {
        let page = self
            .store()
            .list_subscriptions(&SubscriptionQuery {
                product_type: Some(ProductType::user_group()),
                lifecycle: Some(Lifecycle::Active),
                ..SubscriptionQuery::default()
            })
            .await?;
        let ids: Vec<Uuid> = page.items.iter().map(|item| item.subscription.id).collect();
        Ok(self
            .store()
            .load_subscriptions(&ids)
            .await?
            .into_iter()
            .filter_map(|record| UserGroup::from_record(record).ok())
            .filter(|group| group.user_group.discoverable)
            .collect())
    }

    /// One active discoverable group; a hidden or missing one is the same not found.
    async fn discoverable(&self, id: &str) -> Result<UserGroup, RegistrationError> {
        let id = ExternalId::parse(id).map_err(|_| RegistrationError::NotFound)?;
        let found = self
            .store()
            .find_by_unique_values("user_group_id", &[id.as_str().to_owned()])
            .await?;
        let Some((_, subscription)) = found.into_iter().next() else {
            return Err(RegistrationError::NotFound);
        };
        let record = self.store().load_subscription(subscription).await?;
        match UserGroup::from_record(record) {
            Ok(group)
                if group.user_group.discoverable
                    && group.subscription.lifecycle == Lifecycle::Active =>
            {
                Ok(group)
            }
            _ => Err(RegistrationError::NotFound),
        }
    }

    /// The public view of a discoverable group.
    pub async fn discoverable_group(&self, id: &str) -> Result<PublicGroup, RegistrationError> {
        Ok(public(&self.discoverable(id).await?))
    }

    pub(super) async fn acting_user(&self, user: Option<Uuid>) -> Result<User, RegistrationError> {
        let user = user.ok_or(RegistrationError::NoUser)?;
        let record = self.store().load_subscription(user).await?;
        match User::from_record(record) {
            Ok(user) if user.subscription.lifecycle == Lifecycle::Active => Ok(user),
            _ => Err(RegistrationError::NoUser),
        }
    }

    /// Joins the caller's user to a discoverable group: at once (a process adds the
    /// membership), or, when the group has terms, by mailing a link to accept them.
    pub async fn join(&self, user: Option<Uuid>, group: &str) -> Result<Joined, RegistrationError> {
        let group = self.discoverable(group).await?;
        let user = self.acting_user(user).await?;
        let reference = group.user_group.reference(group.subscription.id);
        if user.user.groups.contains(&reference) {
            return Err(RegistrationError::AlreadyMember);
        }
        let Some(terms) = group.user_group.terms.clone() else {
            return Ok(Joined::Member(
                self.start_membership(JOIN_USER_GROUP, &user, &group)
                    .await?,
            ));
        };
        let now = self.now();
        let issued = tokens::issue(
            TokenOperation::AcceptGroupTerms,
            TokenSubject {
                user_id: Some(user.subscription.id),
                group_id: Some(group.subscription.id),
                ..TokenSubject::default()
            },
            now,
            Self::ttl(self.settings.terms_ttl),
        )?;
        let mut context = self.membership_context(&user, &group);
        context["terms"] = json!(terms);
        context["accept_url"] = json!(self.link(&issued.plain));
        let mail = self.templates.render(
            TemplateName::GroupTerms,
            vec![user.user.email.as_str().to_owned()],
            &context,
        )?;
        let txn = self.store().begin().await?;
        txn.create_registration_token(&issued.token).await?;
        txn.enqueue(&mail_message(&mail, now)).await?;
        txn.commit().await?;
        Ok(Joined::TermsSent)
    }

    /// Takes the caller's user out of a discoverable group (a process removes the membership).
    pub async fn leave(&self, user: Option<Uuid>, group: &str) -> Result<Uuid, RegistrationError> {
        let group = self.discoverable(group).await?;
        let user = self.acting_user(user).await?;
        self.start_membership(LEAVE_USER_GROUP, &user, &group).await
    }
}

fn public(group: &UserGroup) -> PublicGroup {
    PublicGroup {
        user_group_id: group.user_group.user_group_id.as_str().to_owned(),
        name: group.user_group.name.to_string(),
        terms: group.user_group.terms.clone(),
    }
}
