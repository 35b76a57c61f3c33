//! Small thread-based HTTP/1.1 servers on 127.0.0.1 for tests and the demo: an echo upstream
//! that reports what reached it, and a static server for a JWKS document. Each binds port 0,
//! answers one request per connection (`Connection: close`) and stops on drop. Their accept
//! loop, [`AcceptLoop`], is every test server's (the JWKS server's too).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http::{decode_chunked, parse_head};

/// A request as a server received it.
#[derive(Debug, Clone)]
pub struct ServerRequest {
    pub method: String,
    /// The request target exactly as received (path and query).
    pub path: String,
    /// Header names lowercased, in received order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a handler answers: status, content type, body.
pub type Reply = (u16, &'static str, String);

type Handler = dyn Fn(&ServerRequest) -> Reply + Send + Sync + 'static;

/// The accept loop of every test server: a thread accepting connections on 127.0.0.1, on a
/// port the kernel chooses, handing each to `on_conn` (which gives it a thread of its own).
/// Stops accepting, and joins the thread, on [`AcceptLoop::stop`] or drop; from then on
/// connections are refused.
pub struct AcceptLoop {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    pub fn start(mut on_conn: impl FnMut(TcpStream) + Send + 'static) -> AcceptLoop {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("server-{port}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    on_conn(conn);
                }
            })
            .expect("spawn server thread");
        AcceptLoop {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops accepting and joins the accept thread (the listener closes with it).
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
        let _ = thread.join();
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running HTTP server: one request per connection, answered by its handler.
struct Server {
    accept: AcceptLoop,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn start(handler: Arc<Handler>) -> Server {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let accept = AcceptLoop::start(move |conn| {
            let handler = Arc::clone(&handler);
            let requests = Arc::clone(&counter);
            std::thread::spawn(move || serve(conn, &*handler, &requests));
        });
        Server { accept, requests }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request from `conn`; `None` on EOF or error before a full request.
fn read_request(conn: &mut TcpStream) -> Option<ServerRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (line, headers) = parse_head(&String::from_utf8_lossy(&buf[..head_end]));
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let mut body = buf.split_off(head_end + 4);
    loop {
        let done = if chunked {
            decode_chunked(&body).is_some()
        } else {
            body.len() >= length.unwrap_or(0)
        };
        if done {
            break;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if chunked {
        body = decode_chunked(&body).unwrap_or_default();
    } else if let Some(len) = length {
        body.truncate(len);
    }
    Some(ServerRequest {
        method,
        path,
        headers,
        body,
    })
}

fn serve(mut conn: TcpStream, handler: &Handler, requests: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    requests.fetch_add(1, Ordering::SeqCst);
    let (status, content_type, body) = handler(&req);
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

/// Answers every request with 200 and a JSON description of what it received:
/// `{"method": .., "path": .., "headers": [[name, value], ...], "body": ..}`, header names
/// lowercased, in received order.
pub struct EchoUpstream {
    pub port: u16,
    server: Server,
}

impl EchoUpstream {
    pub fn start() -> EchoUpstream {
        let server = Server::start(Arc::new(|req: &ServerRequest| {
            let body = serde_json::json!({
                "method": req.method,
                "path": req.path,
                "headers": req.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&req.body),
            });
            (200, "application/json", body.to_string())
        }));
        EchoUpstream {
            port: server.accept.port,
            server,
        }
    }

    /// How many requests reached this upstream so far.
    pub fn request_count(&self) -> usize {
        self.server.requests.load(Ordering::SeqCst)
    }
}

/// Serves fixed documents: `GET <path>` (query ignored) answers 200 `application/json` with its
/// body, anything else 404.
pub struct StaticServer {
    pub port: u16,
    server: Server,
}

impl StaticServer {
    /// Serves one document at `path`.
    pub fn start(path: &str, body: impl Into<String>) -> StaticServer {
        StaticServer::start_many(vec![(path.to_owned(), body.into())])
    }

    /// Serves each `(path, body)`.
    pub fn start_many(routes: Vec<(String, String)>) -> StaticServer {
        let server = Server::start(Arc::new(move |req: &ServerRequest| {
            let path = req.path.split('?').next().unwrap_or_default();
            match routes.iter().find(|(p, _)| p == path) {
                Some((_, body)) if req.method == "GET" => (200, "application/json", body.clone()),
                _ => (404, "text/plain", "not found".to_owned()),
            }
        }));
        StaticServer {
            port: server.accept.port,
            server,
        }
    }

    /// How many requests this server answered so far.
    pub fn request_count(&self) -> usize {
        self.server.requests.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;

    #[test]
    fn echo_reports_what_it_received() {
        let echo = EchoUpstream::start();
        let r = http::get(echo.port, "/a?b=c", &[("X-One", "1"), ("x-one", "2")]);
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/a?b=c");
        let headers = v["headers"].as_array().unwrap();
        let ones: Vec<_> = headers
            .iter()
            .filter(|h| h[0] == "x-one")
            .map(|h| h[1].as_str().unwrap())
            .collect();
        assert_eq!(ones, ["1", "2"]);
        assert_eq!(echo.request_count(), 1);
    }

    #[test]
    fn static_server_serves_its_document() {
        let s = StaticServer::start("/.well-known/jwks.json", r#"{"keys":[]}"#);
        let r = http::get(s.port, "/.well-known/jwks.json?x=1", &[]);
        assert_eq!((r.status, r.body.as_str()), (200, r#"{"keys":[]}"#));
        assert_eq!(http::get(s.port, "/other", &[]).status, 404);
    }
}
