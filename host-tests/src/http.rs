//! A minimal HTTP/1.1 client over `std::net`, with exact control over the request bytes:
//! headers go on the wire exactly as given, in order, duplicates and odd spellings included.
//! One request per connection (`Connection: close`), the response read until EOF.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Socket read and write timeout.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, values trimmed, in received order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when it came chunked.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as JSON; panics with the response when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self:?}"))
    }
}

/// `GET path` to `127.0.0.1:port`. Sends `Host: 127.0.0.1:<port>` unless `headers` has a
/// `host`, then `headers` exactly as given, then `Connection: close` unless `headers` has a
/// `connection`. Panics on I/O errors (this is test tooling).
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    request(port, "GET", path, headers, "")
}

/// Like [`get`], with any method and a body (a `Content-Length` is added when the body is not
/// empty and `headers` has none).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    try_request(port, method, path, headers, body).unwrap_or_else(|e| {
        panic!("{method} http://127.0.0.1:{port}{path} failed: {e}");
    })
}

/// Like [`request`], returning I/O and parse errors instead of panicking.
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !has("connection") {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    send_raw(port, req.as_bytes())
}

/// Sends `raw` bytes as they are to `127.0.0.1:port` and parses what comes back before EOF.
pub fn send_raw(port: u16, raw: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(raw)?;
    stream.flush()?;
    let mut buf = Vec::new();
    read_response(&mut stream, &mut buf)?;
    let _ = stream.shutdown(Shutdown::Both);
    parse_response(&buf)
}

/// Reads until EOF, or until a complete response when it is framed by Content-Length or
/// chunking (so a server that keeps the connection open does not cost a timeout).
fn read_response(stream: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if response_complete(buf) {
            return Ok(());
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            // A reset after a complete response is not an error worth failing on.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !buf.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads one response from an already-written stream (e.g. TLS) and parses it; an I/O error
/// before any byte arrived is returned as is.
pub fn read_and_parse(stream: &mut impl Read) -> std::io::Result<Response> {
    let mut buf = Vec::new();
    read_response(stream, &mut buf)?;
    parse_response(&buf)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// Splits a message head into its first line and lowercased headers.
pub(crate) fn parse_head(head: &str) -> (String, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (l.trim().to_ascii_lowercase(), String::new()),
        })
        .collect();
    (first, headers)
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header_value(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// Whether `buf` already holds a whole response framed by Content-Length or chunking.
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let (_, headers) = parse_head(&String::from_utf8_lossy(&buf[..end]));
    let body = &buf[end + 4..];
    if is_chunked(&headers) {
        return decode_chunked(body).is_some();
    }
    match header_value(&headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => body.len() >= len,
        None => false,
    }
}

/// Decodes a chunked body; `None` while it is incomplete.
pub(crate) fn decode_chunked(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            // Trailers, then the final CRLF.
            find(body, b"\r\n")?;
            return Some(out);
        }
        if body.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn parse_response(buf: &[u8]) -> std::io::Result<Response> {
    let end = find(buf, b"\r\n\r\n").ok_or_else(|| {
        invalid(format!(
            "no complete response head in {:?}",
            String::from_utf8_lossy(buf)
        ))
    })?;
    let (status_line, headers) = parse_head(&String::from_utf8_lossy(&buf[..end]));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let raw_body = &buf[end + 4..];
    let body = if is_chunked(&headers) {
        decode_chunked(raw_body).ok_or_else(|| invalid("truncated chunked body".to_owned()))?
    } else {
        match header_value(&headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(len) if raw_body.len() >= len => raw_body[..len].to_vec(),
            Some(len) => {
                return Err(invalid(format!(
                    "body shorter ({}) than its content-length {len}",
                    raw_body.len()
                )))
            }
            None => raw_body.to_vec(),
        }
    };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            decode_chunked(b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n").unwrap(),
            b"Wikipedia"
        );
        assert!(decode_chunked(b"4\r\nWi").is_none());
    }

    #[test]
    fn responses_parse() {
        let r = parse_response(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer x\r\ncontent-length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer x"));
        assert_eq!(r.body, "abc");
    }
}
