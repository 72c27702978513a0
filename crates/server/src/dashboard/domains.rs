//! Sending domains: the list, adding one, its DNS records (with copy buttons), verifying now, rotating its
//! DKIM keys and deleting it, through the same functions as the API's `/domains` routes.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opensend_store::PageRequest;
use uuid::Uuid;

use super::page::{Chrome, DashError, Found, Notice, html, when, when_opt};
use super::session::{CsrfForm, Workspace};
use crate::api::domains::{
    CreateRequest, REGIONS, add_domain, delete_domain, load, rotate_domain_dkim, verify_domain,
};
use crate::domains;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/domains", get(list).post(create))
        .route("/domains/{id}", get(show))
        .route("/domains/{id}/verify", post(verify))
        .route("/domains/{id}/rotate-dkim", post(rotate))
        .route("/domains/{id}/delete", post(delete))
}

struct DomainRow {
    id: String,
    name: String,
    status: String,
    region: String,
    created: String,
}

#[derive(Template)]
#[template(path = "dashboard/domains.html")]
struct DomainsPage {
    chrome: Chrome,
    domains: Vec<DomainRow>,
    regions: [&'static str; 4],
}

async fn list(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(notice): Query<Notice>,
) -> Result<Response, DashError> {
    let page = state
        .store
        .domains()
        .list(
            workspace.org(),
            PageRequest::new(100, None).unwrap_or_default(),
        )
        .await?;
    html(DomainsPage {
        chrome: Chrome::new(&state, &workspace, "Domains", "domains")?
            .with_notice(notice.done.as_deref()),
        domains: page
            .items
            .into_iter()
            .map(|d| DomainRow {
                id: d.id.to_string(),
                name: d.name,
                status: d.status.as_str().to_owned(),
                region: d.region,
                created: when(d.created_at),
            })
            .collect(),
        regions: REGIONS,
    })
}

async fn create(
    State(state): State<AppState>,
    workspace: Workspace,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let (domain, _) = add_domain(
        &state,
        workspace.org(),
        &workspace.audit(),
        CreateRequest {
            name: form.get("name").map(str::to_owned),
            region: form.get("region").map(str::to_owned),
            custom_return_path: form.get("custom_return_path").map(str::to_owned),
            ..CreateRequest::default()
        },
    )
    .await?;
    Ok(Found::to(format!("/dashboard/domains/{}", domain.id)).into_response())
}

struct RecordRow {
    purpose: String,
    record_type: String,
    name: String,
    value: String,
    priority: String,
    status: String,
    found: String,
    required: bool,
}

#[derive(Template)]
#[template(path = "dashboard/domain.html")]
struct DomainPage {
    chrome: Chrome,
    id: String,
    name: String,
    status: String,
    region: String,
    return_path: String,
    last_checked: String,
    created: String,
    records: Vec<RecordRow>,
}

fn parse_id(raw: &str) -> Result<Uuid, DashError> {
    Uuid::try_parse(raw).map_err(|_| DashError::NotFound)
}

async fn show(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Result<Response, DashError> {
    let domain = load(&state, workspace.org(), parse_id(&id)?).await?;
    let keys = state
        .store
        .domains()
        .keys(workspace.org(), domain.id)
        .await?;
    let records = domains::record_views(&domain, &keys, &domains::record_settings(&state.config))
        .map_err(DashError::internal)?;
    html(DomainPage {
        chrome: Chrome::new(&state, &workspace, domain.name.clone(), "domains")?
            .with_notice(notice.done.as_deref()),
        id: domain.id.to_string(),
        status: domain.status.as_str().to_owned(),
        region: domain.region.clone(),
        return_path: format!("{}.{}", domain.custom_return_path, domain.name),
        last_checked: when_opt(domain.last_checked_at),
        created: when(domain.created_at),
        name: domain.name,
        records: records
            .into_iter()
            .map(|r| RecordRow {
                purpose: r.record.as_str().to_owned(),
                record_type: r.record_type.as_str().to_owned(),
                name: r.name,
                value: r.value,
                priority: r.priority.map(|p| p.to_string()).unwrap_or_default(),
                status: r.status.as_str().to_owned(),
                found: r.found.unwrap_or_default(),
                required: r.required,
            })
            .collect(),
    })
}

async fn verify(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    let domain = verify_domain(&state, workspace.org(), parse_id(&id)?).await?;
    Ok(Found::to(format!(
        "/dashboard/domains/{}?done=domain-verified",
        domain.id
    ))
    .into_response())
}

async fn rotate(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    let domain =
        rotate_domain_dkim(&state, workspace.org(), &workspace.audit(), parse_id(&id)?).await?;
    Ok(Found::to(format!(
        "/dashboard/domains/{}?done=dkim-rotated",
        domain.id
    ))
    .into_response())
}

async fn delete(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    delete_domain(&state, workspace.org(), &workspace.audit(), parse_id(&id)?).await?;
    Ok(Found::to("/dashboard/domains?done=domain-deleted").into_response())
}
