//! The dashboard's people and what they may do:
//!
//! - `users`: one per address whatever its case (`email_key` is the address lower-cased, unique); the
//!   password only as an argon2id PHC string.
//! - `sessions`: signed-in browsers. The cookie holds a random token; only its SHA-256 is stored. Each
//!   session remembers the organization it works in.
//! - `memberships`: a user's role (`owner`, `admin`, `member`) in an organization, one per pair.
//! - `invitations`: an address invited into an organization with a role; the token of its link only as
//!   SHA-256, single-use (`accepted_at`) and expiring (`expires_at`).
//! - `audit_log`: security-relevant changes and sign-ins: who (`actor_type` `user`, `api_key`, `operator`
//!   or `anonymous`, with an id and a label kept for when the actor is gone), what (`action`, target), from
//!   where (`client_ip`) and when. Sign-ins belong to no organization (`organization_id` null).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn cascade<T: IntoIden + Copy + 'static>(
    table: T,
    column: T,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Alias::new(to), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn set_null<T: IntoIden + Copy + 'static>(
    table: T,
    column: T,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Alias::new(to), Alias::new("id"))
        .on_delete(ForeignKeyAction::SetNull)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + Copy + 'static,
    columns: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string(Users::Email))
                    .col(string(Users::EmailKey))
                    .col(string(Users::PasswordHash))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "users_email_key_key",
            Users::Table,
            &["email_key"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(pk_uuid(Sessions::Id))
                    .col(blob(Sessions::TokenHash))
                    .col(uuid(Sessions::UserId))
                    .col(uuid_null(Sessions::OrganizationId))
                    .col(string_null(Sessions::ClientIp))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::LastSeenAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .foreign_key(&mut cascade(Sessions::Table, Sessions::UserId, "users"))
                    .foreign_key(&mut set_null(
                        Sessions::Table,
                        Sessions::OrganizationId,
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "sessions_token_hash_key",
            Sessions::Table,
            &["token_hash"],
            true,
        )
        .await?;
        index(
            manager,
            "sessions_user_id_idx",
            Sessions::Table,
            &["user_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(pk_uuid(Memberships::Id))
                    .col(uuid(Memberships::OrganizationId))
                    .col(uuid(Memberships::UserId))
                    .col(string(Memberships::Role))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    .foreign_key(&mut cascade(
                        Memberships::Table,
                        Memberships::OrganizationId,
                        "organizations",
                    ))
                    .foreign_key(&mut cascade(
                        Memberships::Table,
                        Memberships::UserId,
                        "users",
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "memberships_organization_id_user_id_key",
            Memberships::Table,
            &["organization_id", "user_id"],
            true,
        )
        .await?;
        index(
            manager,
            "memberships_user_id_idx",
            Memberships::Table,
            &["user_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(pk_uuid(Invitations::Id))
                    .col(uuid(Invitations::OrganizationId))
                    .col(string(Invitations::Email))
                    .col(string(Invitations::EmailKey))
                    .col(string(Invitations::Role))
                    .col(blob(Invitations::TokenHash))
                    .col(uuid_null(Invitations::InvitedBy))
                    .col(uuid_null(Invitations::EmailId))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Invitations::AcceptedAt))
                    .col(uuid_null(Invitations::AcceptedBy))
                    .col(timestamp_with_time_zone_null(Invitations::RevokedAt))
                    .foreign_key(&mut cascade(
                        Invitations::Table,
                        Invitations::OrganizationId,
                        "organizations",
                    ))
                    .foreign_key(&mut set_null(
                        Invitations::Table,
                        Invitations::InvitedBy,
                        "users",
                    ))
                    .foreign_key(&mut set_null(
                        Invitations::Table,
                        Invitations::AcceptedBy,
                        "users",
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "invitations_token_hash_key",
            Invitations::Table,
            &["token_hash"],
            true,
        )
        .await?;
        index(
            manager,
            "invitations_organization_id_id_idx",
            Invitations::Table,
            &["organization_id", "id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(pk_uuid(AuditLog::Id))
                    .col(uuid_null(AuditLog::OrganizationId))
                    .col(string(AuditLog::ActorType))
                    .col(uuid_null(AuditLog::ActorId))
                    .col(string(AuditLog::ActorLabel))
                    .col(string(AuditLog::Action))
                    .col(string_null(AuditLog::TargetType))
                    .col(uuid_null(AuditLog::TargetId))
                    .col(text(AuditLog::Detail))
                    .col(string_null(AuditLog::ClientIp))
                    .col(timestamp_with_time_zone(AuditLog::CreatedAt))
                    .foreign_key(&mut cascade(
                        AuditLog::Table,
                        AuditLog::OrganizationId,
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "audit_log_organization_id_id_idx",
            AuditLog::Table,
            &["organization_id", "id"],
            false,
        )
        .await?;
        index(
            manager,
            "audit_log_actor_id_id_idx",
            AuditLog::Table,
            &["actor_id", "id"],
            false,
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    EmailKey,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    OrganizationId,
    ClientIp,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Memberships {
    Table,
    Id,
    OrganizationId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Invitations {
    Table,
    Id,
    OrganizationId,
    Email,
    EmailKey,
    Role,
    TokenHash,
    InvitedBy,
    EmailId,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
    AcceptedBy,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Id,
    OrganizationId,
    ActorType,
    ActorId,
    ActorLabel,
    Action,
    TargetType,
    TargetId,
    Detail,
    ClientIp,
    CreatedAt,
}
