//! `GET /emails/{id}/attachments` and `GET /emails/{id}/attachments/{attachment_id}` for sent emails, and
//! the signed `download_url` they give.

mod common;

use common::{TestApp, call, expect_error};
use reqwest::Method;
use serde_json::json;

/// The path and query of a `download_url` (its host is `APP_URL`'s, not the test server's).
fn path_of(url: &str) -> String {
    let parsed = reqwest::Url::parse(url).unwrap();
    format!("{}?{}", parsed.path(), parsed.query().unwrap())
}

#[tokio::test]
async fn a_sent_emails_attachments_are_listed_read_and_downloaded() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (status, sent) = app
        .send(
            &token,
            &json!({
                "from": "hello@acme.test",
                "to": "jane@example.com",
                "subject": "Files",
                "html": "<p><img src=\"cid:logo\"></p>",
                "attachments": [
                    {"filename": "logo.png", "content": "iVBORw0KGgo=", "content_id": "logo"},
                    {"filename": "notes é.txt", "content": [104, 105, 33]},
                    {"filename": "page.html", "content": "PHNjcmlwdD4=", "content_type": "text/html"},
                ],
            }),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap();

    let (status, list) = call(
        &app,
        &token,
        Method::GET,
        &format!("/emails/{id}/attachments"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["filename"], "logo.png");
    assert_eq!(data[0]["content_type"], "image/png");
    assert_eq!(data[0]["content_id"], "logo");
    assert_eq!(data[0]["content_disposition"], "inline");
    assert_eq!(data[0]["size"], 8);
    assert_eq!(data[1]["filename"], "notes é.txt");
    assert_eq!(data[1]["content_disposition"], "attachment");
    assert_eq!(data[1]["size"], 3);
    assert!(data[1].get("content_id").is_none());
    assert!(data[1]["expires_at"].as_str().is_some());

    // Paging in message order.
    let (_, first) = call(
        &app,
        &token,
        Method::GET,
        &format!("/emails/{id}/attachments?limit=2"),
        None,
    )
    .await;
    assert_eq!(first["has_more"], true);
    let cursor = first["data"][1]["id"].as_str().unwrap();
    let (_, rest) = call(
        &app,
        &token,
        Method::GET,
        &format!("/emails/{id}/attachments?limit=2&after={cursor}"),
        None,
    )
    .await;
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["data"][0]["filename"], "page.html");

    let attachment_id = data[1]["id"].as_str().unwrap();
    let (status, one) = call(
        &app,
        &token,
        Method::GET,
        &format!("/emails/{id}/attachments/{attachment_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["object"], "attachment");
    assert_eq!(one["id"], attachment_id);
    assert_eq!(one["content"], "aGkh");
    assert_eq!(one["size"], 3);

    // The download URL needs no API key, serves the bytes as a download, and cannot be altered.
    let url = one["download_url"].as_str().unwrap();
    assert!(url.contains(&format!(
        "/emails/{id}/attachments/{attachment_id}/download?"
    )));
    let download = app
        .request(Method::GET, &path_of(url))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let headers = download.headers().clone();
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename*=UTF-8''notes%20%C3%A9%2Etxt"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"hi!");

    let html_url = data[2]["download_url"].as_str().unwrap();
    let html = app
        .request(Method::GET, &path_of(html_url))
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-security-policy"], "sandbox");
    assert!(
        html.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );

    let other_attachment = data[0]["id"].as_str().unwrap();
    let path = path_of(url);
    let tampered = [
        path.replace(attachment_id, other_attachment),
        path.replace("expires=", "expires=1"),
        path.replace("signature=", "signature=00"),
        path.split("&signature").next().unwrap().to_owned(),
        format!("/emails/{id}/attachments/{attachment_id}/download"),
    ];
    for path in tampered {
        expect_error(
            app.request(Method::GET, &path).send().await.unwrap(),
            401,
            "unauthorized",
        )
        .await;
    }
}

#[tokio::test]
async fn attachments_are_the_senders_only() {
    let app = TestApp::spawn().await;
    let (_, token_a) = app.tenant().await;
    let (_, token_b) = app.tenant().await;
    let (_, sent) = app
        .send(
            &token_a,
            &json!({"from": "a@acme.test", "to": "x@example.com", "subject": "s", "html": "<p>x</p>",
                    "attachments": [{"filename": "a.txt", "content": "aGk="}]}),
        )
        .await;
    let id = sent["id"].as_str().unwrap();
    let (_, list) = call(
        &app,
        &token_a,
        Method::GET,
        &format!("/emails/{id}/attachments"),
        None,
    )
    .await;
    let attachment = list["data"][0]["id"].as_str().unwrap();
    for path in [
        format!("/emails/{id}/attachments"),
        format!("/emails/{id}/attachments/{attachment}"),
    ] {
        expect_error(
            app.authed(Method::GET, &path, &token_b)
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
    }
    // An email without attachments has an empty list; an unknown one is a 404.
    let (_, plain) = app
        .send(
            &token_a,
            &json!({"from": "a@acme.test", "to": "x@example.com", "subject": "s", "html": "<p>x</p>"}),
        )
        .await;
    let (status, empty) = call(
        &app,
        &token_a,
        Method::GET,
        &format!("/emails/{}/attachments", plain["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(empty["data"], json!([]));
    expect_error(
        app.authed(
            Method::GET,
            &format!("/emails/{}/attachments", uuid::Uuid::now_v7()),
            &token_a,
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_download_url_stops_working_when_it_expires() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let (_, sent) = app
        .send(
            &token,
            &json!({"from": "a@acme.test", "to": "x@example.com", "subject": "s", "html": "<p>x</p>",
                    "attachments": [{"filename": "a.txt", "content": "aGk="}]}),
        )
        .await;
    let id = sent["id"].as_str().unwrap();
    let (_, list) = call(
        &app,
        &token,
        Method::GET,
        &format!("/emails/{id}/attachments"),
        None,
    )
    .await;
    let attachment = list["data"][0]["id"].as_str().unwrap();
    // A URL signed as the server signs, for a chosen expiry.
    let secret = app.state.config.secrets.auth_secret.clone().unwrap();
    let url_expiring = |expires: i64| {
        let signer = opensend_core::signed_link::LinkSigner::new(&secret, "attachment-download");
        let signature = hex::encode(
            signer.signature(format!("v1:{org}:{id}:{attachment}:{expires}").as_bytes()),
        );
        format!(
            "/emails/{id}/attachments/{attachment}/download?org={org}&expires={expires}&signature={signature}"
        )
    };
    let now = chrono::Utc::now().timestamp();
    let fresh = app
        .request(Method::GET, &url_expiring(now + 60))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    assert_eq!(fresh.bytes().await.unwrap().as_ref(), b"hi");
    expect_error(
        app.request(Method::GET, &url_expiring(now - 1))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    // Another organization in the URL does not match the signature.
    let (other, _) = app.tenant().await;
    let forged = url_expiring(now + 60).replace(&format!("org={org}"), &format!("org={other}"));
    expect_error(
        app.request(Method::GET, &forged).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
}
