//! The outbound guard against real DNS answers (from the in-process test nameserver) and real loopback
//! listeners: refused names, DNS rebinding caught at connect time, redirects not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use hickory_proto::rr::rdata::AAAA;
use hickory_proto::rr::{RData, RecordType};
use opensend_server::outbound::{self, AddressKind, OutboundPolicy, UrlRefusal};
use opensend_test_support::dns::{Answer, TestDns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the tenant reads of `refusal` names none of `hidden` (addresses, address kinds, resolver words).
fn assert_no_address(refusal: &UrlRefusal, hidden: &[&str]) {
    for text in [
        refusal.to_string(),
        refusal.describe(
            "endpoint",
            "webhooks can only be delivered to public addresses",
        ),
    ] {
        for word in hidden {
            assert!(!text.contains(word), "`{word}` in {text:?}");
        }
    }
}

fn policy(dns: &TestDns, allow_private: bool) -> OutboundPolicy {
    OutboundPolicy::new(allow_private, Some(dns.addr()), Duration::from_secs(2)).unwrap()
}

fn set_a(dns: &TestDns, name: &str, ip: Ipv4Addr) {
    dns.set_a(name, ip);
}

fn set_aaaa(dns: &TestDns, name: &str, ip: Ipv6Addr) {
    dns.set(
        name,
        RecordType::AAAA,
        Answer::Records(vec![RData::AAAA(AAAA(ip))]),
    );
}

/// A TCP listener on loopback that counts connections and answers each with an empty 204.
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            // Read the request head, then answer.
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            let _ = stream
                .write_all(
                    b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    (addr, connections)
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let dns = TestDns::start().await;
    set_a(&dns, "internal.example.test", Ipv4Addr::new(10, 0, 0, 5));
    set_a(&dns, "public.example.test", Ipv4Addr::new(8, 8, 8, 8));
    // One public and one private address: any non-public answer refuses the URL.
    set_a(&dns, "mixed.example.test", Ipv4Addr::new(8, 8, 4, 4));
    set_aaaa(&dns, "mixed.example.test", "fd00::1".parse().unwrap());
    set_aaaa(
        &dns,
        "metadata.example.test",
        "::ffff:169.254.169.254".parse().unwrap(),
    );
    let guard = policy(&dns, false);

    let url = guard
        .check_url("https://internal.example.test/hook")
        .unwrap();
    let refusal = guard.check_resolved(&url).await.unwrap_err();
    assert_eq!(
        refusal,
        UrlRefusal::Resolves {
            host: "internal.example.test".to_owned(),
            ip: IpAddr::from([10, 0, 0, 5]),
            kind: AddressKind::Private,
        }
    );
    // The tenant learns that the URL is refused, not what our DNS answered.
    assert_eq!(
        refusal.describe(
            "endpoint",
            "webhooks can only be delivered to public addresses"
        ),
        "`endpoint` is not a public address; webhooks can only be delivered to public addresses"
    );
    assert_no_address(&refusal, &["10.0.0.5", "private"]);

    let refusal = guard
        .check("http://mixed.example.test:8080/x")
        .await
        .unwrap_err();
    assert!(
        matches!(refusal, UrlRefusal::Resolves { kind: AddressKind::UniqueLocal, ip, .. } if ip == "fd00::1".parse::<IpAddr>().unwrap()),
        "{refusal:?}"
    );
    assert_no_address(&refusal, &["fd00", "8.8.4.4", "unique-local"]);
    let refusal = guard
        .check("http://metadata.example.test/latest")
        .await
        .unwrap_err();
    assert!(
        matches!(
            refusal,
            UrlRefusal::Resolves {
                kind: AddressKind::LinkLocal,
                ..
            }
        ),
        "{refusal:?}"
    );
    assert_no_address(&refusal, &["169.254", "ffff", "link-local"]);

    // Public: passes. Trailing dot and case do not matter.
    guard
        .check("https://Public.Example.Test./hook")
        .await
        .unwrap();

    // A name that does not exist is refused, and says so.
    let refusal = guard
        .check("https://missing.example.test/")
        .await
        .unwrap_err();
    assert!(
        matches!(&refusal, UrlRefusal::Unresolvable { host, .. } if host == "missing.example.test"),
        "{refusal:?}"
    );
    assert_eq!(refusal.to_string(), "names a host that does not resolve");
    assert_no_address(
        &refusal,
        &[&dns.addr().to_string(), "NXDomain", "no such name"],
    );

    // Allowing private addresses lets the private names through, but not the missing one.
    let open = policy(&dns, true);
    open.check("https://internal.example.test/hook")
        .await
        .unwrap();
    assert!(matches!(
        open.check("https://missing.example.test/").await,
        Err(UrlRefusal::Unresolvable { .. })
    ));
}

#[tokio::test]
async fn the_client_never_connects_to_a_private_address_even_after_rebinding() {
    let dns = TestDns::start().await;
    let (listener, connections) = counting_listener().await;
    let port = listener.port();
    set_a(&dns, "loopback.example.test", Ipv4Addr::LOCALHOST);
    let guard = policy(&dns, false);
    let client = guard.client(Duration::from_secs(5)).unwrap();

    // Straight to a name that resolves only to loopback: the guarded resolver refuses to connect.
    let error = client
        .get(format!("http://loopback.example.test:{port}/"))
        .send()
        .await
        .unwrap_err();
    let refusal = outbound::refusal_in(&error).expect("the guard's refusal in the error chain");
    assert!(
        matches!(
            refusal,
            UrlRefusal::Resolves {
                kind: AddressKind::Loopback,
                ..
            }
        ),
        "{refusal:?}"
    );
    // What a tenant is told about the failed request: refused, without where the name led.
    let told = outbound::describe_request_error(&error, Duration::from_secs(5));
    assert_eq!(told, "the URL is not a public address");
    assert_no_address(refusal, &["127.0.0.1", "loopback"]);

    // Rebinding: public when checked, loopback when connecting.
    set_a(&dns, "rebind.example.test", Ipv4Addr::new(8, 8, 8, 8));
    let url = guard
        .check(&format!("http://rebind.example.test:{port}/"))
        .await
        .unwrap();
    set_a(&dns, "rebind.example.test", Ipv4Addr::LOCALHOST);
    let error = client.get(url).send().await.unwrap_err();
    assert!(
        outbound::refusal_in(&error).is_some(),
        "refused by the guard, not by chance: {error:?}"
    );
    let told = outbound::describe_request_error(&error, Duration::from_secs(5));
    assert_eq!(told, "the URL is not a public address");
    assert!(!told.contains("127.0.0.1") && !told.contains(&port.to_string()));
    // The shared client is guarded the same way.
    let error = guard
        .shared_client()
        .get(format!("http://loopback.example.test:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(outbound::refusal_in(&error).is_some(), "{error:?}");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing reached the listener"
    );

    // Control: with private addresses allowed, the same name does reach the listener.
    let open = policy(&dns, true).client(Duration::from_secs(5)).unwrap();
    let response = open
        .get(format!("http://loopback.example.test:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let dns = TestDns::start().await;
    let target_hits = Arc::new(AtomicUsize::new(0));
    let hits = target_hits.clone();
    let target = serve(Router::new().route(
        "/secret",
        get(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async { "secret" }
        }),
    ))
    .await;
    let user_agent = Arc::new(std::sync::Mutex::new(String::new()));
    let seen = user_agent.clone();
    let redirecting = serve(Router::new().route(
        "/start",
        get(move |headers: HeaderMap| {
            *seen.lock().unwrap() = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("http://{target}/secret"))],
                )
            }
        }),
    ))
    .await;

    // The first hop is on loopback too, so private addresses are allowed here: only the redirect is tested.
    let guard = policy(&dns, true);
    let url = guard
        .check(&format!("http://{redirecting}/start"))
        .await
        .unwrap();
    let response = guard
        .client(Duration::from_secs(5))
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("http://{target}/secret").as_str()
    );
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "redirect not followed"
    );
    assert_eq!(*user_agent.lock().unwrap(), outbound::USER_AGENT);

    // And a URL that is only a literal loopback address never passes the syntax check without the allowance.
    assert!(matches!(
        policy(&dns, false).check_url(&format!("http://{target}/secret")),
        Err(UrlRefusal::Address {
            kind: AddressKind::Loopback,
            ..
        })
    ));
}
