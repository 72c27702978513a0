//! Triggering the background jobs on a timer.
//!
//! `opensend scheduler` POSTs each job of the registry ([`JOBS`]) to the ingester (`INGESTER_URL`, by default
//! this host's `INGESTER_PORT`) with `INGESTER_JOB_TOKEN`, one after the other, every
//! `INGESTER_SCHEDULER_INTERVAL_SECONDS` (a job with its own period, such as the hourly `cleanup`, at most
//! once per period). Runs never overlap: the next round starts an interval after the last one ended. Several
//! schedulers may run at once — jobs claim their work — but one is enough.
//!
//! `opensend serve` needs no scheduler: it runs every job continuously in process.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::config::Config;
use crate::jobs::JOBS;
/// How long one job request may take: a run starts no new round after 5 s, and a round lasts at most a
/// webhook timeout (60 s at most) or a send.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("INGESTER_JOB_TOKEN is not set: the scheduler needs the token the ingester expects")]
    NoToken,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Where the scheduler reaches the ingester.
pub fn ingester_url(config: &Config) -> String {
    match &config.jobs.ingester_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => format!("http://127.0.0.1:{}", config.listen.ingester_port),
    }
}

/// Runs until `stop` turns true.
pub async fn run_over_http(
    config: &Config,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SchedulerError> {
    let token = config
        .secrets
        .ingester_job_token
        .as_ref()
        .ok_or(SchedulerError::NoToken)?;
    let client = reqwest::Client::builder()
        .timeout(JOB_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| SchedulerError::Client(e.to_string()))?;
    let base = ingester_url(config);
    tracing::info!(ingester = %base, every = ?config.jobs.scheduler_interval, "scheduler started");
    let mut last_run: [Option<Instant>; JOBS.len()] = [None; JOBS.len()];
    while !*stop.borrow() {
        for (job, last_run) in JOBS.iter().zip(last_run.iter_mut()) {
            let ran_recently = match (job.every, *last_run) {
                (Some(every), Some(at)) => at.elapsed() < every,
                _ => false,
            };
            if ran_recently {
                continue;
            }
            let name = job.name;
            let started = Instant::now();
            let result = client
                .post(format!("{base}/jobs/{name}"))
                .bearer_auth(token.expose_secret())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => {
                    let body = response.text().await.unwrap_or_default();
                    let took_ms = started.elapsed().as_millis();
                    tracing::info!("job {name} ran in {took_ms} ms: {body}");
                    *last_run = Some(Instant::now());
                }
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    let answer: String = body.chars().take(500).collect();
                    tracing::warn!("job {name} refused or failed: {status} {answer}");
                }
                Err(e) => {
                    tracing::warn!("job {name}: cannot reach the ingester: {}", e.without_url())
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.jobs.scheduler_interval) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}
