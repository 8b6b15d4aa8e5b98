//! scripts/latency-relay: an ssh ProxyCommand that adds network latency.
//!
//!     ProxyCommand latency-relay --delay-ms 10 --log FILE %h %p
//!
//! Connects to HOST:PORT over TCP and forwards bytes both ways between it and
//! stdin/stdout, each byte delivered DELAY ms after it arrived, in each
//! direction (a round trip costs 2 x DELAY more). It is a delay line, not a
//! throttle: bytes keep flowing while earlier ones wait, so bandwidth is not
//! limited. With --log, appends one line "HOST PORT" per connection (the
//! benchmark counts connections with it).
//!
//! Standard library only, built by scripts/bench-backup with
//! `rustc -O scripts/latency-relay.rs`; it is no part of sprayvault.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CHUNK: usize = 256 * 1024;

/// Forwards `from` to `to`, `delay` late, in order; `done` runs at end of input.
fn delay_line<R, W, F>(mut from: R, mut to: W, delay: Duration, done: F) -> thread::JoinHandle<()>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
    F: FnOnce(W) + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = from.read(&mut buf).unwrap_or(0);
            let _ = tx.send((Instant::now() + delay, buf[..n].to_vec()));
            if n == 0 {
                return;
            }
        }
    });
    thread::spawn(move || {
        while let Ok((due, data)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if data.is_empty() || to.write_all(&data).and_then(|_| to.flush()).is_err() {
                break;
            }
        }
        done(to);
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut delay_ms, mut log, mut rest) = (10.0f64, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--delay-ms" => delay_ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(10.0),
            "--log" => log = args.next(),
            _ => rest.push(a),
        }
    }
    let [host, port] = &rest[..] else {
        eprintln!("usage: latency-relay [--delay-ms MS] [--log FILE] HOST PORT");
        std::process::exit(2);
    };
    if let Some(f) = log {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(f) {
            let _ = writeln!(f, "{host} {port}");
        }
    }
    let delay = Duration::from_secs_f64(delay_ms / 1000.0);
    let sock = match TcpStream::connect(format!("{host}:{port}")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("latency-relay: {host}:{port}: {e}");
            std::process::exit(1);
        }
    };
    let _ = sock.set_nodelay(true);
    let up = sock.try_clone().expect("socket clones");
    delay_line(std::io::stdin(), up, delay, |s| {
        let _ = s.shutdown(Shutdown::Write);
    });
    // The node closing its side ends the relay.
    let down = delay_line(sock, std::io::stdout(), delay, |_| {});
    let _ = down.join();
}
