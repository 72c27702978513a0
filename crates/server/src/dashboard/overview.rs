//! The overview: what the organization's mail did over the last [`DAYS`] days: sent, delivered, bounced
//! and complained per UTC day as a bar chart drawn on the server (SVG, no script), and the bounce and
//! complaint rates over the period.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use chrono::{Duration, NaiveDate, Utc};

use super::page::{Chrome, DashError, Notice, html};
use super::session::Workspace;
use crate::state::AppState;

/// Days the chart covers, today included.
pub const DAYS: i64 = 14;
const KINDS: [(&str, &str); 4] = [
    ("email.sent", "sent"),
    ("email.delivered", "delivered"),
    ("email.bounced", "bounced"),
    ("email.complained", "complained"),
];
const CHART_HEIGHT: u32 = 160;
const BAR_WIDTH: u32 = 8;
const DAY_WIDTH: u32 = 4 * BAR_WIDTH + 12;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(show))
}

pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub class: &'static str,
    pub title: String,
}

pub struct DayLabel {
    pub x: u32,
    pub text: String,
}

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    totals: [(&'static str, i64); 4],
    bounce_rate: String,
    complaint_rate: String,
    bars: Vec<Bar>,
    labels: Vec<DayLabel>,
    width: u32,
    height: u32,
    chart_height: u32,
    max: i64,
}

fn rate(part: i64, whole: i64) -> String {
    if whole == 0 {
        "—".to_owned()
    } else {
        format!("{:.2} %", part as f64 * 100.0 / whole as f64)
    }
}

async fn show(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(notice): Query<Notice>,
) -> Result<Response, DashError> {
    let today = Utc::now().date_naive();
    let first = today - Duration::days(DAYS - 1);
    let since = first
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| DashError::internal("no midnight"))?;
    let counts = state
        .store
        .emails()
        .daily_event_counts(workspace.org(), since)
        .await?;
    let days: Vec<NaiveDate> = (0..DAYS).map(|i| first + Duration::days(i)).collect();
    let count = |day: &NaiveDate, kind: &str| -> i64 {
        let day = day.format("%Y-%m-%d").to_string();
        counts
            .iter()
            .filter(|(d, k, _)| *d == day && k == kind)
            .map(|(_, _, n)| *n)
            .sum()
    };
    let total = |kind: &str| {
        counts
            .iter()
            .filter(|(_, k, _)| k == kind)
            .map(|(_, _, n)| *n)
            .sum::<i64>()
    };
    let totals = KINDS.map(|(kind, label)| (label, total(kind)));
    let max = days
        .iter()
        .flat_map(|d| KINDS.iter().map(move |(k, _)| (d, *k)))
        .map(|(d, k)| count(d, k))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let left = 30 + i as u32 * DAY_WIDTH;
        for (j, (kind, label)) in KINDS.iter().enumerate() {
            let n = count(day, kind);
            let height = ((n as f64 / max as f64) * f64::from(CHART_HEIGHT)).round() as u32;
            bars.push(Bar {
                x: left + j as u32 * BAR_WIDTH,
                y: 10 + CHART_HEIGHT - height,
                height,
                class: label,
                title: format!("{}: {n} {label}", day.format("%Y-%m-%d")),
            });
        }
        labels.push(DayLabel {
            x: left,
            text: day.format("%m-%d").to_string(),
        });
    }
    let sent = totals[0].1;
    html(OverviewPage {
        chrome: Chrome::new(&state, &workspace, "Overview", "overview")?
            .with_notice(notice.done.as_deref()),
        bounce_rate: rate(totals[2].1, sent),
        complaint_rate: rate(totals[3].1, sent),
        totals,
        bars,
        labels,
        width: 30 + DAYS as u32 * DAY_WIDTH,
        height: CHART_HEIGHT + 30,
        chart_height: CHART_HEIGHT + 10,
        max,
    })
}
