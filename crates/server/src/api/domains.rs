//! `/domains`: add a sending domain (its DKIM keys are generated here), list, get, update, delete, verify its
//! DNS records, and rotate its DKIM keys. Shapes follow Resend's OpenAPI; extensions are listed in `docs/api.md`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use opensend_core::dns_record::DnsRecordView;
use opensend_core::{DnsLabel, DomainName, DomainStatus, ErrorCode};
use opensend_store::StoreError;
use opensend_store::records::{DkimKeyRecord, DomainRecord};
use opensend_store::repos::{DomainChanges, NewDomain};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::{Audited, FullAccess};
use crate::domains::{self, DomainError};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::state::AppState;
use opensend_store::repos::AuditContext;

/// Resend's regions. They only shape the SES bounce MX host here; the transport decides where mail goes.
pub const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "sa-east-1", "ap-northeast-1"];
pub const DEFAULT_REGION: &str = "us-east-1";
pub const TLS_MODES: [&str; 2] = ["opportunistic", "enforced"];
pub const DEFAULT_RETURN_PATH: &str = "send";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(verify))
        .routes(routes!(rotate_dkim))
}

/// Resend's `capabilities`: `{"sending": "enabled"|"disabled", "receiving": …}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CapabilitiesRequest {
    pub sending: Option<String>,
    pub receiving: Option<String>,
}

/// What `POST /domains` reads (and the dashboard's form fills in).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateRequest {
    pub name: Option<String>,
    pub region: Option<String>,
    pub custom_return_path: Option<String>,
    pub open_tracking: Option<bool>,
    pub click_tracking: Option<bool>,
    pub tracking_subdomain: Option<String>,
    pub tls: Option<String>,
    pub capabilities: Option<CapabilitiesRequest>,
    /// Extension: allow From addresses at subdomains of this domain once it is verified.
    pub allow_subdomains: Option<bool>,
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::validation(format!("`{field}` {problem}."))
}

fn parse_label(field: &str, raw: &str) -> Result<DnsLabel, ApiError> {
    DnsLabel::parse(raw).map_err(|e| invalid(field, e))
}

fn parse_choice(field: &str, raw: &str, allowed: &[&str]) -> Result<String, ApiError> {
    allowed
        .iter()
        .find(|a| **a == raw)
        .map(|a| (*a).to_owned())
        .ok_or_else(|| {
            invalid(
                field,
                format!(
                    "must be one of {}, not `{}`",
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    raw.chars().take(64).collect::<String>()
                ),
            )
        })
}

fn parse_capability(field: &str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw {
        None => Ok(None),
        Some("enabled") => Ok(Some(true)),
        Some("disabled") => Ok(Some(false)),
        Some(other) => Err(invalid(
            field,
            format!(
                "must be `enabled` or `disabled`, not `{}`",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// A tracking CNAME cannot share its name with the return path's TXT and MX records (RFC 1034 §3.6.2).
fn check_tracking_vs_return_path(
    tracking: Option<&DnsLabel>,
    return_path: &str,
) -> Result<(), ApiError> {
    if tracking.is_some_and(|t| t.as_str() == return_path) {
        return Err(invalid(
            "tracking_subdomain",
            "must differ from `custom_return_path`: a CNAME cannot share a name with the return path's records",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/domains",
    tag = "domains",
    operation_id = "domains.create",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn create(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    let (domain, keys) = add_domain(&state, caller.organization_id, &audit, body).await?;
    let view = DomainView::build(&state, domain, &keys)?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Adds a sending domain with fresh DKIM keys: `POST /domains` and the dashboard's form.
pub(crate) async fn add_domain(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    body: CreateRequest,
) -> Result<(DomainRecord, Vec<DkimKeyRecord>), ApiError> {
    let raw_name = body.name.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing required field `name`.",
        )
    })?;
    let name = DomainName::parse(&raw_name).map_err(|e| invalid("name", e))?;
    let region = match body.region.as_deref() {
        None => DEFAULT_REGION.to_owned(),
        Some(raw) => parse_choice("region", raw, &REGIONS)?,
    };
    let return_path = match body.custom_return_path.as_deref() {
        None => DnsLabel::parse(DEFAULT_RETURN_PATH).map_err(ApiError::internal)?,
        Some(raw) => parse_label("custom_return_path", raw)?,
    };
    let tracking = body
        .tracking_subdomain
        .as_deref()
        .map(|raw| parse_label("tracking_subdomain", raw))
        .transpose()?;
    check_tracking_vs_return_path(tracking.as_ref(), return_path.as_str())?;
    let tls = match body.tls.as_deref() {
        None => TLS_MODES[0].to_owned(),
        Some(raw) => parse_choice("tls", raw, &TLS_MODES)?,
    };
    let capabilities = body.capabilities.unwrap_or_default();
    let sending =
        parse_capability("capabilities.sending", capabilities.sending.as_deref())?.unwrap_or(true);
    let receiving = parse_capability("capabilities.receiving", capabilities.receiving.as_deref())?
        .unwrap_or(false);
    if !sending && !receiving {
        return Err(invalid(
            "capabilities",
            "must enable at least one of `sending` and `receiving`",
        ));
    }

    let keys = domains::new_keys(&state.secrets)
        .await
        .map_err(ApiError::internal)?;
    state
        .store
        .domains()
        .by(audit)
        .create(
            NewDomain {
                organization_id,
                name: name.to_string(),
                region,
                custom_return_path: return_path.to_string(),
                open_tracking: body.open_tracking.unwrap_or(false),
                click_tracking: body.click_tracking.unwrap_or(false),
                tracking_subdomain: tracking.map(|t| t.to_string()),
                tls,
                sending_enabled: sending,
                receiving_enabled: receiving,
                allow_subdomains: body.allow_subdomains.unwrap_or(false),
            },
            keys,
            &domains::records_for_events(&state.config),
        )
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) => ApiError::validation(format!(
                "The domain `{name}` has already been added to this organization."
            )),
            other => other.into(),
        })
}

#[derive(Debug, Serialize)]
struct Capabilities {
    sending: &'static str,
    receiving: &'static str,
}

fn capabilities(domain: &DomainRecord) -> Capabilities {
    let word = |on: bool| if on { "enabled" } else { "disabled" };
    Capabilities {
        sending: word(domain.sending_enabled),
        receiving: word(domain.receiving_enabled),
    }
}

/// Resend's `Domain`, with our extensions.
#[derive(Debug, Serialize)]
struct DomainView {
    object: &'static str,
    id: Uuid,
    name: String,
    status: DomainStatus,
    created_at: String,
    region: String,
    open_tracking: bool,
    click_tracking: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_subdomain: Option<String>,
    capabilities: Capabilities,
    records: Vec<DnsRecordView>,
    // Extensions.
    custom_return_path: String,
    return_path: String,
    tls: String,
    allow_subdomains: bool,
    last_checked_at: Option<String>,
}

impl DomainView {
    fn build(
        state: &AppState,
        domain: DomainRecord,
        keys: &[DkimKeyRecord],
    ) -> Result<Self, ApiError> {
        let records =
            domains::record_views(&domain, keys, &domains::record_settings(&state.config))
                .map_err(ApiError::internal)?;
        let caps = capabilities(&domain);
        Ok(Self {
            object: "domain",
            id: domain.id,
            return_path: format!("{}.{}", domain.custom_return_path, domain.name),
            name: domain.name,
            status: domain.status,
            created_at: timestamp(domain.created_at),
            region: domain.region,
            open_tracking: domain.open_tracking,
            click_tracking: domain.click_tracking,
            tracking_subdomain: domain.tracking_subdomain.clone(),
            capabilities: caps,
            records,
            custom_return_path: domain.custom_return_path,
            tls: domain.tls,
            allow_subdomains: domain.allow_subdomains,
            last_checked_at: domain.last_checked_at.map(timestamp),
        })
    }
}

/// Resend's `ListDomainsItem`.
#[derive(Debug, Serialize)]
struct DomainListItem {
    id: Uuid,
    name: String,
    status: DomainStatus,
    created_at: String,
    region: String,
    open_tracking: bool,
    click_tracking: bool,
    capabilities: Capabilities,
}

#[utoipa::path(
    get,
    path = "/domains",
    tag = "domains",
    operation_id = "domains.list",
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<DomainListItem>>, ApiError> {
    let page = state
        .store
        .domains()
        .list(caller.organization_id, query.page()?)
        .await?;
    let items = page
        .items
        .into_iter()
        .map(|d| DomainListItem {
            capabilities: capabilities(&d),
            id: d.id,
            name: d.name,
            status: d.status,
            created_at: timestamp(d.created_at),
            region: d.region,
            open_tracking: d.open_tracking,
            click_tracking: d.click_tracking,
        })
        .collect();
    Ok(Json(ListResponse::new(items, page.has_more)))
}

/// The organization's domain `id`, or 404.
pub(crate) async fn load(
    state: &AppState,
    organization_id: Uuid,
    id: Uuid,
) -> Result<DomainRecord, ApiError> {
    state
        .store
        .domains()
        .get(organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Domain"))
}

async fn view(state: &AppState, domain: DomainRecord) -> Result<DomainView, ApiError> {
    let keys = state
        .store
        .domains()
        .keys(domain.organization_id, domain.id)
        .await?;
    DomainView::build(state, domain, &keys)
}

#[utoipa::path(
    get,
    path = "/domains/{id}",
    tag = "domains",
    operation_id = "domains.show",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn show(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<DomainView>, ApiError> {
    let domain = load(&state, caller.organization_id, id).await?;
    Ok(Json(view(&state, domain).await?))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    open_tracking: Option<bool>,
    click_tracking: Option<bool>,
    /// A label, or `null` to remove the tracking subdomain.
    #[serde(default, deserialize_with = "present")]
    tracking_subdomain: Option<Option<String>>,
    tls: Option<String>,
    capabilities: Option<CapabilitiesRequest>,
    allow_subdomains: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`) from a field not sent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(
    patch,
    path = "/domains/{id}",
    tag = "domains",
    operation_id = "domains.update",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn update(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let existing = load(&state, caller.organization_id, id).await?;
    let tracking_subdomain = match body.tracking_subdomain {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => Some(Some(parse_label("tracking_subdomain", &raw)?)),
    };
    if let Some(Some(label)) = &tracking_subdomain {
        check_tracking_vs_return_path(Some(label), &existing.custom_return_path)?;
    }
    let tls = body
        .tls
        .as_deref()
        .map(|raw| parse_choice("tls", raw, &TLS_MODES))
        .transpose()?;
    let capabilities = body.capabilities.unwrap_or_default();
    let sending = parse_capability("capabilities.sending", capabilities.sending.as_deref())?;
    let receiving = parse_capability("capabilities.receiving", capabilities.receiving.as_deref())?;
    if !sending.unwrap_or(existing.sending_enabled)
        && !receiving.unwrap_or(existing.receiving_enabled)
    {
        return Err(invalid(
            "capabilities",
            "must enable at least one of `sending` and `receiving`",
        ));
    }
    let updated = state
        .store
        .domains()
        .by(&audit)
        .update(
            caller.organization_id,
            id,
            DomainChanges {
                open_tracking: body.open_tracking,
                click_tracking: body.click_tracking,
                tracking_subdomain: tracking_subdomain.map(|t| t.map(|l| l.to_string())),
                tls,
                sending_enabled: sending,
                receiving_enabled: receiving,
                allow_subdomains: body.allow_subdomains,
            },
            &domains::records_for_events(&state.config),
        )
        .await?;
    if updated.is_none() {
        return Err(ApiError::not_found("Domain"));
    }
    Ok(Json(json!({"object": "domain", "id": id})))
}

#[utoipa::path(
    delete,
    path = "/domains/{id}",
    tag = "domains",
    operation_id = "domains.remove",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    delete_domain(&state, caller.organization_id, &audit, id).await?;
    Ok(Json(json!({"object": "domain", "id": id, "deleted": true})))
}

/// Deletes a domain of the organization with its keys: the API's `DELETE` and the dashboard's button.
pub(crate) async fn delete_domain(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(), ApiError> {
    if state
        .store
        .domains()
        .by(audit)
        .delete(
            organization_id,
            id,
            &domains::records_for_events(&state.config),
        )
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::not_found("Domain"))
    }
}

#[utoipa::path(
    post,
    path = "/domains/{id}/verify",
    tag = "domains",
    operation_id = "domains.verify",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn verify(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<DomainView>, ApiError> {
    let checked = verify_domain(&state, caller.organization_id, id).await?;
    Ok(Json(view(&state, checked).await?))
}

/// Looks up the domain's records now and stores what was found.
pub(crate) async fn verify_domain(
    state: &AppState,
    organization_id: Uuid,
    id: Uuid,
) -> Result<DomainRecord, ApiError> {
    let domain = load(state, organization_id, id).await?;
    domains::verify(state, &domain, Utc::now())
        .await
        .map_err(domain_error)?
        .ok_or_else(|| ApiError::not_found("Domain"))
}

/// `POST /domains/{id}/rotate-dkim`: a new RSA + Ed25519 pair under a new selector. Its records are listed (as
/// not required) next to the current ones; once both verify, the new keys sign and the old ones retire (their
/// records may then be removed).
#[utoipa::path(
    post,
    path = "/domains/{id}/rotate-dkim",
    tag = "domains",
    operation_id = "domains.rotate_dkim",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn rotate_dkim(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathId(id): PathId,
) -> Result<Json<DomainView>, ApiError> {
    let domain = rotate_domain_dkim(&state, caller.organization_id, &audit, id).await?;
    Ok(Json(view(&state, domain).await?))
}

/// Starts a DKIM rotation: the API's `POST /domains/{id}/rotate-dkim` and the dashboard's button.
pub(crate) async fn rotate_domain_dkim(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    id: Uuid,
) -> Result<DomainRecord, ApiError> {
    let domain = load(state, organization_id, id).await?;
    let keys = domains::new_keys(&state.secrets)
        .await
        .map_err(domain_error)?;
    state
        .store
        .domains()
        .by(audit)
        .add_next_keys(organization_id, id, keys)
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) => ApiError::validation(
                "A DKIM rotation is already waiting for its records; publish them and verify the domain first.",
            ),
            other => other.into(),
        })?;
    load(state, organization_id, domain.id).await
}

#[track_caller]
fn domain_error(e: DomainError) -> ApiError {
    match e {
        DomainError::Store(store) => store.into(),
        other => ApiError::internal(other),
    }
}
