//! Attachments given by `path`: fetched from their URL when the email is accepted, through the outbound
//! guard (`crate::outbound`), so the stored email holds the file as it was at that moment.
//!
//! Each URL must pass the guard's checks (a public address unless `ALLOW_PRIVATE_WEBHOOK_URLS=true`); the
//! request follows no redirects, must answer 2xx within [`FETCH_TIMEOUT`], and its body is read piece by piece
//! against what is left of the message-size limit, so a large or endless body is cut off at the limit and
//! never buffered whole. Up to [`CONCURRENT_FETCHES`] files are fetched at once. Any failure is a 422
//! `invalid_attachment` naming the attachment and what went wrong; nothing is stored.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use opensend_store::repos::emails::NewAttachment;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use url::Url;

use super::limits::{self, bad_attachment};
use super::request::{self, Attachment, ParsedEmail, RemoteAttachment, checked_filename};
use crate::error::ApiError;
use crate::outbound::{self, OutboundPolicy, UrlRefusal};

/// Longest a fetch may take: DNS, connection, response and body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Files of one email fetched at the same time.
pub const CONCURRENT_FETCHES: usize = 4;

const PUBLIC_ONLY: &str = "attachments can only be fetched from public addresses";

/// Fetches every attachment given by `path`; the others pass through. Attachments keep their order.
pub async fn fetch_attachments(
    policy: &OutboundPolicy,
    mut email: ParsedEmail<Attachment>,
) -> Result<ParsedEmail, ApiError> {
    // Every URL is checked (syntax, literal addresses, file name) before anything is fetched.
    let mut planned = Vec::with_capacity(email.attachments.len());
    let mut held = email.body_bytes();
    for attachment in &email.attachments {
        match attachment {
            Attachment::Ready(ready) => held += ready.content.len(),
            Attachment::Remote(remote) => planned.push(plan(policy, remote)?),
        }
    }
    // What fetched files may add before the message would be too large, shared by the concurrent fetches.
    let budget = AtomicUsize::new(limits::max_raw_message_bytes().saturating_sub(held));
    let budget = &budget;
    let fetched: Vec<Fetched> = futures::stream::iter(planned)
        .map(|plan| async move {
            let index = plan.index;
            fetch(policy, plan, budget)
                .await
                .map_err(|failure| failure.into_error(index))
        })
        .buffered(CONCURRENT_FETCHES)
        .try_collect()
        .await?;

    let mut fetched = fetched.into_iter();
    let mut attachments = Vec::with_capacity(email.attachments.len());
    for attachment in std::mem::take(&mut email.attachments) {
        match attachment {
            Attachment::Ready(ready) => attachments.push(ready),
            Attachment::Remote(remote) => {
                let Some(file) = fetched.next() else {
                    return Err(ApiError::internal(
                        "fewer fetched attachments than attachments to fetch",
                    ));
                };
                let content_type = remote
                    .content_type
                    .or(file.content_type)
                    .unwrap_or_else(|| request::media_type_for(&file.filename).to_owned());
                attachments.push(NewAttachment {
                    filename: file.filename,
                    content_type,
                    content_id: remote.content_id,
                    content: file.content,
                });
            }
        }
    }
    let email = email.with_attachments(attachments);
    let total: usize = email.attachments.iter().map(|a| a.content.len()).sum();
    limits::check_message_size(email.body_bytes() + total)?;
    Ok(email)
}

/// A checked URL and the file name the attachment will have.
struct Plan {
    index: usize,
    url: Url,
    filename: String,
}

struct Fetched {
    filename: String,
    /// The response's media type, when it says something more than `application/octet-stream`.
    content_type: Option<String>,
    content: Vec<u8>,
}

fn plan(policy: &OutboundPolicy, remote: &RemoteAttachment) -> Result<Plan, ApiError> {
    let index = remote.index;
    let url = policy
        .check_url(&remote.path)
        .map_err(|refusal| refused(index, &refusal))?;
    let filename = match &remote.filename {
        Some(name) => name.clone(),
        None => {
            let last = url
                .path_segments()
                .and_then(|mut segments| segments.next_back())
                .map(|segment| {
                    percent_encoding::percent_decode_str(segment)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            checked_filename(index, last).map_err(|_| {
                bad_attachment(
                    index,
                    "`filename` is required: the `path` URL does not end in a usable file name.",
                )
            })?
        }
    };
    Ok(Plan {
        index,
        url,
        filename,
    })
}

fn refused(index: usize, refusal: &UrlRefusal) -> ApiError {
    bad_attachment(
        index,
        &format!("{}.", refusal.describe("path", PUBLIC_ONLY)),
    )
}

/// Why a fetch failed.
enum Failure {
    Refused(UrlRefusal),
    TimedOut,
    Status(StatusCode),
    TooLarge,
    Request(String),
}

impl Failure {
    fn into_error(self, index: usize) -> ApiError {
        let message = match self {
            Failure::Refused(refusal) => return refused(index, &refusal),
            Failure::TimedOut => format!(
                "fetching `path` took longer than {} seconds.",
                FETCH_TIMEOUT.as_secs()
            ),
            Failure::Status(status) => format!(
                "fetching `path` answered HTTP {status}; only a 2xx answer is accepted{}.",
                if status.is_redirection() {
                    " (redirects are not followed)"
                } else {
                    ""
                }
            ),
            Failure::TooLarge => format!(
                "the file at `path` is too large: the message would be over {} MiB once encoded.",
                limits::MESSAGE_BYTES / (1024 * 1024)
            ),
            Failure::Request(reason) => format!("fetching `path` failed: {reason}."),
        };
        bad_attachment(index, &message)
    }
}

async fn fetch(
    policy: &OutboundPolicy,
    plan: Plan,
    budget: &AtomicUsize,
) -> Result<Fetched, Failure> {
    match tokio::time::timeout(FETCH_TIMEOUT, download(policy, &plan.url, budget)).await {
        Err(_) => Err(Failure::TimedOut),
        Ok(Err(failure)) => Err(failure),
        Ok(Ok((content_type, content))) => Ok(Fetched {
            filename: plan.filename,
            content_type,
            content,
        }),
    }
}

async fn download(
    policy: &OutboundPolicy,
    url: &Url,
    budget: &AtomicUsize,
) -> Result<(Option<String>, Vec<u8>), Failure> {
    policy.check_resolved(url).await.map_err(Failure::Refused)?;
    let mut response = policy
        .shared_client()
        .get(url.clone())
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(request_failure)?;
    let status = response.status();
    if !status.is_success() {
        return Err(Failure::Status(status));
    }
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > budget.load(Ordering::Relaxed) as u64) {
        return Err(Failure::TooLarge);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(media_type_of);
    // Never trust the declared length for more than a modest first allocation.
    let initial = declared.map_or(0, |len| usize::try_from(len).unwrap_or(0).min(1024 * 1024));
    let mut content = Vec::with_capacity(initial);
    while let Some(chunk) = response.chunk().await.map_err(request_failure)? {
        let taken = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(chunk.len())
        });
        if taken.is_err() {
            return Err(Failure::TooLarge);
        }
        content.extend_from_slice(&chunk);
    }
    Ok((content_type, content))
}

/// The media type of a `Content-Type` header, without parameters; `None` when it is missing, malformed or
/// only says `application/octet-stream` (then the file name decides).
fn media_type_of(header: &str) -> Option<String> {
    let essence = header.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    (request::is_media_type(&essence) && essence != "application/octet-stream").then_some(essence)
}

/// What a failed request tells the client: a refusal by the guard at connect time, a timeout, or what went
/// wrong in words that name no address we resolved (`outbound::describe_request_error`).
fn request_failure(error: reqwest::Error) -> Failure {
    if let Some(refusal) = outbound::refusal_in(&error) {
        return Failure::Refused(refusal.clone());
    }
    if error.is_timeout() {
        return Failure::TimedOut;
    }
    Failure::Request(outbound::describe_request_error(&error, FETCH_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_media_types_are_read_without_parameters() {
        assert_eq!(
            media_type_of("text/plain; charset=utf-8").as_deref(),
            Some("text/plain")
        );
        assert_eq!(
            media_type_of("Application/PDF").as_deref(),
            Some("application/pdf")
        );
        assert_eq!(media_type_of("application/octet-stream"), None);
        assert_eq!(media_type_of("nonsense"), None);
        assert_eq!(media_type_of(""), None);
    }
}
