//! The audience, read-only: contacts, segments and topics, each a list and one item's page (with a
//! segment's contacts and a contact's properties and segments).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use opensend_store::repos::contacts::ContactKey;
use uuid::Uuid;

use super::page::{Chrome, DashError, PageQuery, html, next_page, when};
use super::session::Workspace;
use super::table::{Cell, Table, TablePage};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(contacts))
        .route("/contacts/{id}", get(contact))
        .route("/segments", get(segments))
        .route("/segments/{id}", get(segment))
        .route("/topics", get(topics))
        .route("/topics/{id}", get(topic))
}

fn parse_id(raw: &str) -> Result<Uuid, DashError> {
    Uuid::try_parse(raw).map_err(|_| DashError::NotFound)
}

fn contact_rows(items: Vec<opensend_store::records::ContactRecord>) -> Vec<Vec<Cell>> {
    items
        .into_iter()
        .map(|c| {
            let name = [c.first_name.clone(), c.last_name.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                Cell::link(c.email, format!("/dashboard/contacts/{}", c.id)),
                Cell::text(name),
                Cell::text(match (c.unsubscribed, c.suppressed) {
                    (_, true) => "suppressed",
                    (true, false) => "unsubscribed",
                    (false, false) => "subscribed",
                }),
                Cell::text(when(c.created_at)),
            ]
        })
        .collect()
}

async fn contacts(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashError> {
    let page = state
        .store
        .contacts()
        .list(workspace.org(), None, query.page()?)
        .await?
        .ok_or(DashError::NotFound)?;
    let next = next_page(&page, "/dashboard/contacts", |c| c.id);
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Contacts", "contacts")?,
        heading: "Contacts".into(),
        intro: None,
        facts: Vec::new(),
        tables: vec![Table {
            id: "contacts",
            title: String::new(),
            columns: vec!["Email", "Name", "Subscription", "Added"],
            rows: contact_rows(page.items),
            empty: "No contacts yet.",
        }],
        next,
        text: None,
    })
}

async fn contact(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
) -> Result<Response, DashError> {
    let detail = state
        .store
        .contacts()
        .get(workspace.org(), &ContactKey::Id(parse_id(&id)?))
        .await?
        .ok_or(DashError::NotFound)?;
    let mut segments = Vec::new();
    for id in &detail.segment_ids {
        if let Some(segment) = state.store.segments().get(workspace.org(), *id).await? {
            segments.push(vec![Cell::link(
                segment.name,
                format!("/dashboard/segments/{}", segment.id),
            )]);
        }
    }
    let c = &detail.contact;
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Contact", "contacts")?,
        heading: c.email.clone(),
        intro: None,
        facts: vec![
            ("First name", c.first_name.clone().unwrap_or_default()),
            ("Last name", c.last_name.clone().unwrap_or_default()),
            ("Unsubscribed", c.unsubscribed.to_string()),
            ("Suppressed", c.suppressed.to_string()),
            ("Added", when(c.created_at)),
        ],
        tables: vec![
            Table {
                id: "properties",
                title: "Properties".into(),
                columns: vec!["Key", "Value"],
                rows: detail
                    .properties
                    .iter()
                    .map(|p| vec![Cell::text(p.key.clone()), Cell::text(p.value.to_string())])
                    .collect(),
                empty: "No properties.",
            },
            Table {
                id: "segments",
                title: "Segments".into(),
                columns: vec!["Name"],
                rows: segments,
                empty: "In no segment.",
            },
        ],
        next: None,
        text: None,
    })
}

async fn segments(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashError> {
    let page = state
        .store
        .segments()
        .list(workspace.org(), query.page()?)
        .await?;
    let next = next_page(&page, "/dashboard/segments", |s| s.id);
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Segments", "segments")?,
        heading: "Segments".into(),
        intro: None,
        facts: Vec::new(),
        tables: vec![Table {
            id: "segments",
            title: String::new(),
            columns: vec!["Name", "Created"],
            rows: page
                .items
                .into_iter()
                .map(|s| {
                    vec![
                        Cell::link(s.name, format!("/dashboard/segments/{}", s.id)),
                        Cell::text(when(s.created_at)),
                    ]
                })
                .collect(),
            empty: "No segments yet.",
        }],
        next,
        text: None,
    })
}

async fn segment(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashError> {
    let segment = state
        .store
        .segments()
        .get(workspace.org(), parse_id(&id)?)
        .await?
        .ok_or(DashError::NotFound)?;
    let members = state
        .store
        .contacts()
        .list(workspace.org(), Some(segment.id), query.page()?)
        .await?
        .ok_or(DashError::NotFound)?;
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Segment", "segments")?,
        heading: segment.name.clone(),
        intro: None,
        facts: vec![
            ("Id", segment.id.to_string()),
            ("Created", when(segment.created_at)),
        ],
        tables: vec![Table {
            id: "contacts",
            title: "Contacts".into(),
            columns: vec!["Email", "Name", "Subscription", "Added"],
            rows: contact_rows(members.items),
            empty: "No contacts in this segment.",
        }],
        next: None,
        text: None,
    })
}

async fn topics(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashError> {
    let page = state
        .store
        .topics()
        .list(workspace.org(), query.page()?)
        .await?;
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Topics", "topics")?,
        heading: "Topics".into(),
        intro: None,
        facts: Vec::new(),
        tables: vec![Table {
            id: "topics",
            title: String::new(),
            columns: vec!["Name", "Default", "Visibility", "Created"],
            rows: page
                .items
                .into_iter()
                .map(|t| {
                    vec![
                        Cell::link(t.name, format!("/dashboard/topics/{}", t.id)),
                        Cell::text(t.default_subscription.as_str()),
                        Cell::text(t.visibility.as_str()),
                        Cell::text(when(t.created_at)),
                    ]
                })
                .collect(),
            empty: "No topics yet.",
        }],
        next: None,
        text: None,
    })
}

async fn topic(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
) -> Result<Response, DashError> {
    let topic = state
        .store
        .topics()
        .get(workspace.org(), parse_id(&id)?)
        .await?
        .ok_or(DashError::NotFound)?;
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Topic", "topics")?,
        heading: topic.name.clone(),
        intro: None,
        facts: vec![
            ("Id", topic.id.to_string()),
            ("Description", topic.description.clone().unwrap_or_default()),
            (
                "Default subscription",
                topic.default_subscription.as_str().to_owned(),
            ),
            ("Visibility", topic.visibility.as_str().to_owned()),
            ("Created", when(topic.created_at)),
        ],
        tables: Vec::new(),
        next: None,
        text: None,
    })
}
