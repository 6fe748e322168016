//! A minimal HTTP/1.1 client for the Streamable HTTP rows: one keep-alive connection, one MCP
//! session, blocking std I/O. Like the stdio peer it parses only what it must (the status
//! line, `Content-Length` or chunked framing, `Mcp-Session-Id`), so what is measured is the
//! gateway's HTTP front, not a client library.
//!
//! Requests are POSTed with `Accept: application/json, text/event-stream` and no progress
//! token, so the front answers as `application/json`; an SSE answer is still read (its last
//! `data:` line is the answer).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::{check_result, CallTemplate, PROTOCOL_VERSION};

/// One connection to `http://ADDR/mcp`, and the session it opened.
pub struct HttpPeer {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    /// Request head up to (not including) `Content-Length`: method, path, host, accept,
    /// content type, the session's id and protocol version once they are known.
    head: Vec<u8>,
    session: Option<String>,
    body: Vec<u8>,
    request: Vec<u8>,
    line: String,
}

impl HttpPeer {
    /// Connects (no Nagle delay: a request is one small write).
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let mut peer = Self {
            reader: BufReader::with_capacity(crate::IO_BUF, tcp.try_clone()?),
            writer: BufWriter::with_capacity(crate::IO_BUF, tcp),
            head: Vec::new(),
            session: None,
            body: Vec::with_capacity(crate::IO_BUF),
            request: Vec::with_capacity(1024),
            line: String::new(),
        };
        peer.head = peer.make_head(addr);
        Ok(peer)
    }

    fn make_head(&self, addr: SocketAddr) -> Vec<u8> {
        let mut head = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        );
        if let Some(id) = &self.session {
            head.push_str(&format!(
                "Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: {PROTOCOL_VERSION}\r\n"
            ));
        }
        head.into_bytes()
    }

    /// `initialize` (answered, the session id kept) + `notifications/initialized` (202).
    pub fn open_session(&mut self, addr: SocketAddr) -> Result<()> {
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":"init","method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"orchestra-bench","version":"0"}}}}}}"#
        );
        let (status, session) = self.exchange(init.as_bytes())?;
        if status != 200 {
            bail!("initialize over HTTP: status {status}");
        }
        check_result(&self.body).context("initialize over HTTP")?;
        self.session = Some(session.ok_or_else(|| anyhow!("no Mcp-Session-Id"))?);
        self.head = self.make_head(addr);
        let (status, _) =
            self.exchange(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        if status != 202 {
            bail!("notifications/initialized over HTTP: status {status}");
        }
        Ok(())
    }

    /// Opens the session's GET stream on a connection of its own and reads only its head (the
    /// stream then stays open, unread, as an idle client's would). Returns that connection.
    pub fn open_stream(&self, addr: SocketAddr) -> Result<TcpStream> {
        let id = self
            .session
            .as_deref()
            .ok_or_else(|| anyhow!("no session yet"))?;
        let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        write!(
            tcp,
            "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\nMCP-Protocol-Version: {PROTOCOL_VERSION}\r\n\r\n"
        )?;
        // The head only, byte by byte: nothing of the stream's body is consumed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte)? == 0 {
                bail!("the gateway closed the GET stream");
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 200") {
            bail!("GET stream: {}", String::from_utf8_lossy(&head));
        }
        Ok(tcp)
    }

    /// POSTs a request; returns its answer (one JSON-RPC message).
    pub fn request(&mut self, body: &[u8]) -> Result<&[u8]> {
        let (status, _) = self.exchange(body)?;
        if status != 200 {
            bail!(
                "HTTP status {status}: {}",
                String::from_utf8_lossy(&self.body)
            );
        }
        Ok(&self.body)
    }

    /// POSTs the template's request with `id`; returns the answer.
    pub fn call(&mut self, template: &mut CallTemplate, id: u64) -> Result<&[u8]> {
        let mut body = std::mem::take(&mut self.request);
        body.clear();
        template.write(&mut body, id)?;
        let result = self.exchange(&body);
        self.request = body;
        let (status, _) = result?;
        if status != 200 {
            bail!(
                "HTTP status {status}: {}",
                String::from_utf8_lossy(&self.body)
            );
        }
        Ok(&self.body)
    }

    /// One request and its whole response; the body is left in `self.body` (an SSE body
    /// reduced to its last event's data). Returns the status and any `Mcp-Session-Id`.
    fn exchange(&mut self, body: &[u8]) -> Result<(u16, Option<String>)> {
        self.writer.write_all(&self.head)?;
        write!(self.writer, "Content-Length: {}\r\n\r\n", body.len())?;
        self.writer.write_all(body)?;
        self.writer.flush().context("sending an HTTP request")?;
        self.read_response()
    }

    fn read_line(&mut self) -> Result<&str> {
        self.line.clear();
        if self.reader.read_line(&mut self.line)? == 0 {
            bail!("the gateway closed the connection");
        }
        Ok(self.line.trim_end())
    }

    fn read_response(&mut self) -> Result<(u16, Option<String>)> {
        let status: u16 = self
            .read_line()?
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {:?}", self.line))?;
        let (mut length, mut chunked, mut sse, mut session) = (None, false, false, None);
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "content-type" => sse = value.starts_with("text/event-stream"),
                "mcp-session-id" => session = Some(value.to_owned()),
                _ => {}
            }
        }
        self.body.clear();
        if chunked {
            loop {
                let size =
                    usize::from_str_radix(self.read_line()?.trim(), 16).context("chunk size")?;
                if size == 0 {
                    self.read_line()?; // the empty line after the last chunk
                    break;
                }
                let start = self.body.len();
                self.body.resize(start + size, 0);
                self.reader.read_exact(&mut self.body[start..])?;
                self.read_line()?;
            }
        } else if let Some(n) = length {
            self.body.resize(n, 0);
            self.reader.read_exact(&mut self.body)?;
        }
        if sse {
            let text = String::from_utf8_lossy(&self.body).into_owned();
            let last = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("data:"))
                .unwrap_or("")
                .trim()
                .to_owned();
            self.body = last.into_bytes();
        }
        Ok((status, session))
    }
}

/// The address of the HTTP front in a line of the gateway's log (`url=http://ADDR/mcp`).
pub fn address_in_log(line: &str) -> Option<SocketAddr> {
    let at = line.find("http://")?;
    let rest = &line[at + "http://".len()..];
    rest[..rest.find("/mcp")?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_the_log_line() {
        let line =
            "2026-12-04T20:00:00Z  INFO serving Streamable HTTP url=http://127.0.0.1:41234/mcp";
        assert_eq!(
            address_in_log(line),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(address_in_log("no address here"), None);
    }
}
