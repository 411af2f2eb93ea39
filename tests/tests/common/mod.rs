//! Tiny protocol clients for the launcher and proxy tests: just enough RESP and HTTP to
//! prove a server serves, written here so the tests depend on no backend crate.
#![allow(dead_code, unreachable_pub)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A generous per-request timeout for a busy machine.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking RESP connection.
pub struct Resp {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Resp {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Resp> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Resp {
            reader: BufReader::new(stream.try_clone()?),
            stream,
        })
    }

    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// Sends a command; returns the reply as text: `+OK` → `OK`, `$3 bar` → `bar`, nil →
    /// `(nil)`, `:1` → `1`, errors as `ERR ...` in an `Err`.
    pub fn command(&mut self, args: &[&str]) -> io::Result<String> {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.stream.write_all(req.as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'+') | Some(b':') => Ok(line[1..].to_owned()),
            Some(b'-') => Err(io::Error::other(line[1..].to_owned())),
            Some(b'$') => {
                let len: i64 = line[1..].parse().map_err(io::Error::other)?;
                if len < 0 {
                    return Ok("(nil)".into());
                }
                let mut buf = vec![0; len as usize + 2];
                self.reader.read_exact(&mut buf)?;
                buf.truncate(len as usize);
                String::from_utf8(buf).map_err(io::Error::other)
            }
            _ => Err(io::Error::other(format!("unexpected reply {line:?}"))),
        }
    }
}

/// A blocking HTTP/1.0 POST with a JSON body; returns the response body.
pub fn http_post(
    addr: SocketAddr,
    path: &str,
    body: &str,
    timeout: Duration,
) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes())?;
    let mut resp = String::new();
    stream.read_to_string(&mut resp)?;
    match resp.split_once("\r\n\r\n") {
        Some((head, body))
            if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") =>
        {
            Ok(body.to_owned())
        }
        _ => Err(io::Error::other(format!(
            "unexpected HTTP response: {resp}"
        ))),
    }
}

/// Whether a process with `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether a process with `pid` exists at all (a zombie counts).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
