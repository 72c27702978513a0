//! Errors as pages (404, 403, an expired form, bad input) and the redirect that answers a form. Kept apart
//! from the page layout so the session extractors can refuse without depending on it.

use askama::Template;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opensend_core::ErrorCode;
use opensend_store::StoreError;

use crate::error::ApiError;

/// A `303 See Other` to a dashboard path (after a form, so a reload does not post it again).
#[derive(Debug)]
pub struct Found(String);

impl Found {
    pub fn to(path: impl Into<String>) -> Self {
        Self(path.into())
    }
}

impl IntoResponse for Found {
    fn into_response(self) -> Response {
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(location) = HeaderValue::from_str(&self.0) {
            response.headers_mut().insert(LOCATION, location);
        }
        response
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum DashError {
    /// Not there, or another organization's (the same answer, as in the API).
    NotFound,
    /// The role does not allow it.
    Forbidden(&'static str),
    /// The form's CSRF token is missing or wrong.
    Csrf,
    /// Input that cannot be used, with what is wrong.
    BadRequest(String),
    /// Too many attempts.
    TooMany(String),
    SignInRequired,
    Redirect(Found),
    Internal,
    Unavailable,
}

impl DashError {
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(error = %cause, at = %at, "dashboard: internal error");
        DashError::Internal
    }
}

impl From<StoreError> for DashError {
    #[track_caller]
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for DashError {
    /// An error of the shared operations (the API's), shown as a page with the same message.
    fn from(e: ApiError) -> Self {
        match e.code() {
            ErrorCode::NotFound => DashError::NotFound,
            ErrorCode::InternalServerError => DashError::Internal,
            ErrorCode::ServiceUnavailable => DashError::Unavailable,
            ErrorCode::RateLimitExceeded => DashError::TooMany(e.message().to_owned()),
            _ => DashError::BadRequest(e.message().to_owned()),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let (status, title, message): (StatusCode, &str, String) = match self {
            DashError::SignInRequired => return Found::to("/dashboard/sign-in").into_response(),
            DashError::Redirect(found) => return found.into_response(),
            DashError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it belongs to another organization.".into(),
            ),
            DashError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why.into()),
            DashError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from this dashboard's page, or the page is too old. Go back, reload the page and try again.".into(),
            ),
            DashError::BadRequest(why) => (StatusCode::UNPROCESSABLE_ENTITY, "Cannot do that", why),
            DashError::TooMany(why) => (StatusCode::TOO_MANY_REQUESTS, "Too many attempts", why),
            DashError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An unexpected error occurred; it has been logged.".into(),
            ),
            DashError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The service is temporarily unavailable; try again shortly.".into(),
            ),
        };
        let body = ErrorPage {
            title,
            message: &message,
        }
        .render()
        .unwrap_or_else(|_| message.clone());
        let mut response = (status, body).into_response();
        set_html(&mut response);
        response
    }
}

/// Marks a response as a page that no cache keeps.
pub fn set_html(response: &mut Response) {
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
