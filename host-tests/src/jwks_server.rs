//! A JWKS (and OIDC discovery) server on 127.0.0.1 for remote-JWKS tests: counts the requests
//! per path and can be told to misbehave (an error status, a hang, garbage, a huge body, a
//! connection closed mid-response, a body trickled byte by byte, a different key set on every
//! hit), to rotate its keys, and to die in the middle of a response ([`JwksServer::kill`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::servers::AcceptLoop;

/// The JWKS path served.
pub const JWKS_PATH: &str = "/jwks";
/// The OIDC discovery path served.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// How the server answers `GET /jwks`.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with this JWKS document.
    Serve(String),
    /// This status with a short text body.
    Status(u16),
    /// Read the request, answer nothing for this long, then close.
    Hang(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a body of this many bytes (a JSON object padded with spaces).
    Huge(usize),
    /// Headers announcing 1000 bytes, 10 of them sent, then the connection closed.
    CloseMidResponse,
    /// 200 with this JWKS document, its body sent one byte every `every` (headers at once).
    Trickle { doc: String, every: Duration },
    /// 200 with these documents in turn: the n-th request to `/jwks` (from 0) gets
    /// `docs[n % len]`, so every fetch sees a different key set.
    Cycle(Vec<String>),
}

struct State {
    behavior: Behavior,
    hits: BTreeMap<String, Vec<Instant>>,
    /// Open connections, so [`JwksServer::kill`] can cut them.
    conns: Vec<TcpStream>,
}

/// The server; stops on drop.
pub struct JwksServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    accept: AcceptLoop,
}

impl JwksServer {
    /// Starts serving `behavior` at [`JWKS_PATH`] and a discovery document at
    /// [`DISCOVERY_PATH`] whose `jwks_uri` is this server's [`JWKS_PATH`].
    pub fn start(behavior: Behavior) -> JwksServer {
        let state = Arc::new(Mutex::new(State {
            behavior,
            hits: BTreeMap::new(),
            conns: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let accept = AcceptLoop::start(move |conn| {
            if let Ok(c) = conn.try_clone() {
                shared.lock().unwrap().conns.push(c);
            }
            let state = Arc::clone(&shared);
            std::thread::spawn(move || serve(conn, &state));
        });
        JwksServer {
            port: accept.port,
            state,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`, the issuer for discovery.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>/jwks`.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.base())
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Changes how `/jwks` is answered from now on.
    pub fn set(&self, behavior: Behavior) {
        self.state.lock().unwrap().behavior = behavior;
    }

    /// Requests received at `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .map_or(0, Vec::len)
    }

    /// Requests received at [`JWKS_PATH`] so far.
    pub fn jwks_hits(&self) -> usize {
        self.hits(JWKS_PATH)
    }

    /// Waits until [`JWKS_PATH`] has seen `n` requests (panics after `limit`).
    pub fn wait_for_jwks_hits(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.jwks_hits() < n {
            assert!(
                Instant::now() < deadline,
                "the JWKS server saw {} requests, not {n}, within {limit:?}",
                self.jwks_hits()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl JwksServer {
    /// The server dies: it stops listening (later connections are refused) and every open
    /// connection is cut, whatever it was sending.
    pub fn kill(&mut self) {
        self.accept.stop();
        for conn in self.state.lock().unwrap().conns.drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let port = conn.local_addr().map(|a| a.port()).unwrap_or_default();
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (behavior, seen) = {
        let mut s = state.lock().unwrap();
        let hits = s.hits.entry(path.clone()).or_default();
        hits.push(Instant::now());
        let seen = hits.len() - 1;
        (s.behavior.clone(), seen)
    };
    let reply = |conn: &mut TcpStream, status: u16, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(body);
    };
    if path == DISCOVERY_PATH {
        let doc = format!(
            r#"{{"issuer":"http://127.0.0.1:{port}","jwks_uri":"http://127.0.0.1:{port}{JWKS_PATH}"}}"#
        );
        reply(&mut conn, 200, doc.as_bytes());
    } else if path != JWKS_PATH {
        reply(&mut conn, 404, b"not found");
    } else {
        match behavior {
            Behavior::Serve(doc) => reply(&mut conn, 200, doc.as_bytes()),
            Behavior::Status(code) => reply(&mut conn, code, b"server error"),
            Behavior::Hang(d) => std::thread::sleep(d),
            Behavior::Garbage => reply(&mut conn, 200, b"<html>not a key set</html>"),
            Behavior::Huge(n) => {
                let mut body = b"{\"keys\":[]".to_vec();
                body.resize(n - 1, b' ');
                body.push(b'}');
                reply(&mut conn, 200, &body);
            }
            Behavior::Trickle { doc, every } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n",
                    doc.len()
                );
                let _ = conn.set_nodelay(true);
                if conn.write_all(head.as_bytes()).is_ok() {
                    for b in doc.as_bytes() {
                        std::thread::sleep(every);
                        if conn.write_all(std::slice::from_ref(b)).is_err() {
                            break;
                        }
                    }
                }
            }
            Behavior::Cycle(docs) => reply(&mut conn, 200, docs[seen % docs.len()].as_bytes()),
            Behavior::CloseMidResponse => {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"keys\":[",
                );
            }
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}
