//! A DNS server on loopback whose answers the test decides: records, NXDOMAIN, SERVFAIL, or silence (a
//! timeout). It speaks UDP and TCP on the same port, as a resolver expects of one nameserver.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// TTL of every answer.
const TTL: u32 = 60;

#[derive(Clone, Debug)]
pub enum Answer {
    Records(Vec<RData>),
    /// SERVFAIL.
    ServFail,
    /// No reply at all: the resolver times out.
    Silence,
}

type Zone = Arc<Mutex<HashMap<(String, RecordType), Answer>>>;

pub struct TestDns {
    addr: SocketAddr,
    zone: Zone,
    tasks: Vec<JoinHandle<()>>,
}

impl TestDns {
    pub async fn start() -> Self {
        // UDP and TCP must share the port; a port free for UDP may be taken for TCP, so try a few.
        for _ in 0..20 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
            let addr = udp.local_addr().expect("UDP address");
            let Ok(tcp) = TcpListener::bind(addr).await else {
                continue;
            };
            let zone: Zone = Arc::default();
            let tasks = vec![
                tokio::spawn(serve_udp(udp, zone.clone())),
                tokio::spawn(serve_tcp(tcp, zone.clone())),
            ];
            return Self { addr, zone, tasks };
        }
        panic!("no loopback port free for both UDP and TCP");
    }

    /// `host:port` for `DNS_RESOLVER`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, name: &str, record_type: RecordType, answer: Answer) {
        self.zone
            .lock()
            .expect("zone lock")
            .insert((key(name), record_type), answer);
    }

    pub fn remove(&self, name: &str, record_type: RecordType) {
        self.zone
            .lock()
            .expect("zone lock")
            .remove(&(key(name), record_type));
    }

    /// One TXT record per value, each split into 255-byte strings as a DNS provider publishes it.
    pub fn set_a(&self, name: &str, ip: std::net::Ipv4Addr) {
        self.set(
            name,
            RecordType::A,
            Answer::Records(vec![RData::A(hickory_proto::rr::rdata::A(ip))]),
        );
    }

    pub fn set_txt(&self, name: &str, values: &[&str]) {
        let records = values
            .iter()
            .map(|v| {
                let parts: Vec<String> = v
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                RData::TXT(TXT::new(parts))
            })
            .collect();
        self.set(name, RecordType::TXT, Answer::Records(records));
    }

    pub fn set_mx(&self, name: &str, priority: u16, host: &str) {
        let exchange = Name::from_ascii(format!("{host}.")).expect("MX host");
        self.set(
            name,
            RecordType::MX,
            Answer::Records(vec![RData::MX(MX::new(priority, exchange))]),
        );
    }

    pub fn set_cname(&self, name: &str, target: &str) {
        let target = Name::from_ascii(format!("{target}.")).expect("CNAME target");
        self.set(
            name,
            RecordType::CNAME,
            Answer::Records(vec![RData::CNAME(CNAME(target))]),
        );
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The reply to `query`, or `None` to stay silent.
fn answer(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let name = key(&question.name.to_ascii());
    let found = {
        let zone = zone.lock().ok()?;
        let exact = zone.get(&(name.clone(), question.query_type)).cloned();
        let name_exists = zone.keys().any(|(n, _)| *n == name);
        (exact, name_exists)
    };
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.message_type = MessageType::Response;
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        response.edns = Some(edns);
    }
    match found {
        (Some(Answer::Silence), _) => return None,
        (Some(Answer::ServFail), _) => response.metadata.response_code = ResponseCode::ServFail,
        (Some(Answer::Records(records)), _) => {
            for rdata in records {
                response
                    .answers
                    .push(Record::from_rdata(question.name.clone(), TTL, rdata));
            }
        }
        (None, true) => {}
        (None, false) => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response.to_vec().ok()
}

async fn serve_udp(socket: UdpSocket, zone: Zone) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        if let Some(reply) = answer(&zone, &buffer[..len]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Zone) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let zone = zone.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let mut query = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                if let Some(reply) = answer(&zone, &query) {
                    let Ok(len) = u16::try_from(reply.len()) else {
                        return;
                    };
                    if stream.write_u16(len).await.is_err()
                        || stream.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
    }
}
