//! Where limits meet requests.
//!
//! Public API, for every request:
//! 1. The client address is worked out ([`client_ip`]).
//! 2. No `Authorization` header: the request draws from its address's bucket and goes on (the route answers
//!    401 if it needs a key).
//! 3. A key is presented: if the address's bucket is already empty the request is refused with 429 *before
//!    the key is looked up*, so a flood of invented keys costs no database query per request. Otherwise
//!    the key is looked up; a wrong key draws from the address's bucket, a valid one from its own bucket (if
//!    the operator gave it one) and its organization's. The address's bucket never limits valid keys
//!    otherwise, so many tenants behind one NAT do not share a limit.
//!
//! Ingester: every request draws from its source address's bucket.
//!
//! Each response carries `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` of the bucket that
//! decided; a 429 also carries `retry-after`, and so does the 503 of an unreachable Redis.

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opensend_core::ErrorCode;

use super::client_ip::client_ip;
use super::{Bucket, Decision, Subject, ceil_secs};
use crate::auth::{self, ApiKeyContext};
use crate::error::ApiError;
use crate::state::AppState;

pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// `retry-after` of a 503 `rate_limit_unavailable`: Redis is tried again after a second.
const UNAVAILABLE_RETRY_SECS: u64 = 1;

const ONE: NonZeroU32 = NonZeroU32::MIN;

/// The public API's limits (see the module documentation for the order of checks).
pub async fn api(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = source_ip(&request, &state);
    let ip_bucket = Bucket {
        subject: Subject::ClientIp(ip),
        rate: state.config.rate_limits.limits.client_ip,
    };
    if !request.headers().contains_key(AUTHORIZATION) {
        return draw_then_run(&state, &[ip_bucket], request, next).await;
    }
    match state.rate_limiter.refuses(&ip_bucket).await {
        Ok(Some(refusal)) => return too_many(refusal),
        Ok(None) => {}
        Err(_) => return unavailable(),
    }
    let (mut parts, body) = request.into_parts();
    match auth::authenticate(&mut parts, &state).await {
        Ok(context) => {
            let buckets = buckets_of(&state, &context);
            draw_then_run(&state, &buckets, Request::from_parts(parts, body), next).await
        }
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey
            ) =>
        {
            match state.rate_limiter.check(&[ip_bucket], ONE).await {
                Ok(decision) if decision.allowed => with_headers(e.into_response(), &decision),
                Ok(refusal) => too_many(refusal),
                Err(_) => unavailable(),
            }
        }
        // The database is down or broken: nothing was learnt about the key, so nothing is charged.
        Err(e) => e.into_response(),
    }
}

/// The ingester's limit: per source address, for every route.
pub async fn ingester(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let bucket = Bucket {
        subject: Subject::IngesterIp(source_ip(&request, &state)),
        rate: state.config.rate_limits.limits.ingester_ip,
    };
    // Amazon SNS retries 5xx answers and drops a message answered with any 4xx, 429 included: a throttled
    // SES event must be a 503 (same `retry-after`), or it would be lost.
    let retried_only_on_5xx = request.uri().path() == "/events/ses";
    let mut response = draw_then_run(&state, &[bucket], request, next).await;
    if retried_only_on_5xx && response.status() == StatusCode::TOO_MANY_REQUESTS {
        let headers = std::mem::take(response.headers_mut());
        response = ApiError::new(
            ErrorCode::ServiceUnavailable,
            "Too many requests from this address; try again after `retry-after` seconds.",
        )
        .into_response();
        for (name, value) in headers.iter() {
            if name == RETRY_AFTER || name.as_str().starts_with("ratelimit") {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    response
}

/// Draws `cost` more requests from the caller's buckets. The middleware has already counted the request
/// itself as one, so a route whose request stands for several units (a batch of 100 emails counts as 100)
/// calls this with `cost = units - 1` before doing the work. An error is the whole response to return (429
/// with its headers, or 503); `None` when there was nothing to draw.
pub async fn charge_additional(
    state: &AppState,
    context: &ApiKeyContext,
    cost: u32,
) -> Result<Option<Decision>, Response> {
    let buckets = buckets_of(state, context);
    let Some(cost) = NonZeroU32::new(cost) else {
        return Ok(None);
    };
    match state.rate_limiter.check(&buckets, cost).await {
        Ok(decision) if decision.allowed => Ok(Some(decision)),
        Ok(refusal) if refusal.exceeds_burst => {
            let error = ApiError::new(
                ErrorCode::RateLimitExceeded,
                format!(
                    "This request counts as {} requests, more than the {} this API key may make at \
                     once; send it in smaller parts.",
                    u64::from(cost.get()) + 1,
                    refusal.limit
                ),
            );
            Err(with_headers(error.into_response(), &refusal))
        }
        Ok(refusal) => Err(too_many(refusal)),
        Err(_) => Err(unavailable()),
    }
}

/// The caller's buckets, most specific first.
fn buckets_of(state: &AppState, context: &ApiKeyContext) -> Vec<Bucket> {
    let mut buckets = Vec::with_capacity(2);
    if let Some(rate) = context.key_rate_limit {
        buckets.push(Bucket {
            subject: Subject::ApiKey(context.key_id),
            rate,
        });
    }
    buckets.push(Bucket {
        subject: Subject::Organization(context.organization_id),
        rate: context
            .organization_rate_limit
            .unwrap_or(state.config.rate_limits.limits.organization),
    });
    buckets
}

async fn draw_then_run(
    state: &AppState,
    buckets: &[Bucket],
    request: Request,
    next: Next,
) -> Response {
    match state.rate_limiter.check(buckets, ONE).await {
        Ok(decision) if decision.allowed => with_headers(next.run(request).await, &decision),
        Ok(refusal) => too_many(refusal),
        Err(_) => unavailable(),
    }
}

fn source_ip(request: &Request, state: &AppState) -> std::net::IpAddr {
    // Servers started by `serve::start` always record the peer; without one (a router driven in-process)
    // every request shares the unspecified address, which limits rather than exempts.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
        .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    client_ip(
        peer,
        request.headers(),
        state.config.rate_limits.trusted_proxy_hops,
    )
}

fn too_many(refusal: Decision) -> Response {
    let response =
        ApiError::new(ErrorCode::RateLimitExceeded, retry_message(&refusal)).into_response();
    with_headers(response, &refusal)
}

fn retry_message(refusal: &Decision) -> String {
    let secs = retry_after_secs(refusal);
    format!(
        "Too many requests: the limit is {} at once. Retry after {secs} second{}.",
        refusal.limit,
        if secs == 1 { "" } else { "s" }
    )
}

fn unavailable() -> Response {
    let mut response = ApiError::new(
        ErrorCode::RateLimitUnavailable,
        "Rate limiting is temporarily unavailable; retry shortly.",
    )
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_SECS));
    response
}

/// Whole seconds, at least 1: `Retry-After: 0` would invite an immediate retry that is refused again.
fn retry_after_secs(decision: &Decision) -> u64 {
    ceil_secs(decision.retry_after).max(1)
}

fn with_headers(mut response: Response, decision: &Decision) -> Response {
    set_headers(response.headers_mut(), decision);
    response
}

fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(decision.limit));
    headers.insert(
        RATELIMIT_REMAINING.clone(),
        HeaderValue::from(decision.remaining),
    );
    headers.insert(
        RATELIMIT_RESET.clone(),
        HeaderValue::from(ceil_secs(decision.reset)),
    );
    if !decision.allowed {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(decision)));
    }
}
