//! A browser over HTTP for the dashboard's black-box tests: a cookie jar, no automatic redirects (so a test
//! sees each 303), and the CSRF token read from the last page.

#![allow(dead_code)]

use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};

pub struct Browser {
    pub base: String,
    pub client: Client,
    /// The `_csrf` of the last page read with [`Browser::page`].
    pub csrf: String,
}

pub struct Page {
    pub status: StatusCode,
    pub body: String,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
}

impl Page {
    pub fn csrf(&self) -> Option<String> {
        let start = self.body.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }

    /// Panics unless the body contains `text`.
    pub fn shows(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "expected {text:?} on the page ({}): {}",
            self.status,
            self.body
        );
        self
    }

    pub fn hides(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} on the page ({}): {}",
            self.status,
            self.body
        );
        self
    }
}

async fn page(response: Response) -> Page {
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let body = response.text().await.expect("body");
    Page {
        status,
        body,
        location,
        set_cookies,
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .expect("client"),
            csrf: String::new(),
        }
    }

    /// GET `path`; remembers the page's CSRF token.
    pub async fn get(&mut self, path: &str) -> Page {
        let page = page(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("get"),
        )
        .await;
        if let Some(token) = page.csrf() {
            self.csrf = token;
        }
        page
    }

    /// POSTs a form with the current CSRF token (unless the fields name `_csrf` themselves).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if !fields.iter().any(|(k, _)| *k == "_csrf") {
            form.push(("_csrf", &self.csrf));
        }
        let body = serde_urlencoded(&form);
        let page = page(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("post"),
        )
        .await;
        if let Some(token) = page.csrf() {
            self.csrf = token;
        }
        page
    }

    /// GETs `path` and follows redirects within the dashboard; the last page.
    pub async fn visit(&mut self, path: &str) -> Page {
        let mut page = self.get(path).await;
        for _ in 0..5 {
            match (&page.status, &page.location) {
                (s, Some(to)) if s.is_redirection() => {
                    let to = to.clone();
                    page = self.get(&to).await;
                }
                _ => break,
            }
        }
        page
    }

    /// POSTs and follows the redirect that answers it.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.post(path, fields).await;
        match (&page.status, &page.location) {
            (s, Some(to)) if s.is_redirection() => {
                let to = to.clone();
                self.visit(&to).await
            }
            _ => page,
        }
    }

    /// Creates an account through the sign-up page (signed in afterwards).
    pub async fn sign_up(&mut self, email: &str, password: &str) -> Page {
        self.get("/dashboard/sign-up").await;
        self.post(
            "/dashboard/sign-up",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.get("/dashboard/sign-in").await;
        self.post(
            "/dashboard/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Creates an organization (after sign-up), and works in it.
    pub async fn create_organization(&mut self, name: &str) -> Page {
        self.get("/dashboard/organizations/new").await;
        self.submit("/dashboard/organizations", &[("name", name)])
            .await
    }
}

fn serde_urlencoded(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

pub const PASSWORD: &str = "a long enough password";
